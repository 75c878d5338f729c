//! LOLWUT [VERSION v] [...]: computer art and the version, as Redis 7.0
//! answers it. Version 5 draws Georg Nees's "Schotter" (a grid of squares
//! growing more disordered row by row) in Braille dots, with optional
//! `cols squares-per-row squares-per-col`; version 6 draws a city skyline
//! in four shades of ANSI colour, with optional `cols rows`. Any other
//! version (7, the default, included) prints only the version line. The
//! pictures are random: only their size and captions are fixed.

use super::{CmdResult, Ctx, Error, Handler};
use crate::resp::Args;
use crate::util::rand;

pub const COMMANDS: &[(&str, Handler)] = &[("lolwut", lolwut)];

fn version_line() -> String {
    format!("Redis ver. {}\n", crate::REDIS_VERSION)
}

fn int_arg(args: &Args<'_>, i: usize, default: i64, lo: i64, hi: i64) -> Result<i64, Error> {
    if i >= args.len() {
        return Ok(default);
    }
    let v = crate::util::num::parse_i64(&args[i]).ok_or(Error::NotInteger)?;
    Ok(v.clamp(lo, hi))
}

fn lolwut(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut version = 7;
    if args.len() >= 3 && args[1].eq_ignore_ascii_case(b"version") {
        version = crate::util::num::parse_i64(&args[2]).ok_or(Error::NotInteger)?;
    }
    let text = match version {
        5 => {
            let cols = int_arg(args, 3, 66, 1, 1000)?;
            let per_row = int_arg(args, 4, 8, 1, 200)?;
            let per_col = int_arg(args, 5, 12, 1, 200)?;
            let mut t =
                schotter(cols as usize, per_row as usize, per_col as usize).render_braille();
            t.push_str("\nGeorg Nees - schotter, plotter on paper, 1968. ");
            t.push_str(&version_line());
            t
        }
        6 => {
            let cols = int_arg(args, 3, 80, 1, 1000)?;
            let rows = int_arg(args, 4, 20, 1, 1000)?;
            let mut t = skyline(cols as usize, rows as usize).render_shades();
            t.push_str("Dedicated to the 8 bit game developers of past and present.\n");
            t.push_str("Original 8 bit image from Plaguemon by hikikomori. ");
            t.push_str(&version_line());
            t
        }
        _ => version_line(),
    };
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// A random number in [0, 1).
fn unit() -> f64 {
    (rand::u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A grid of pixels, each a shade 0..=3 (0: off / black).
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize, fill: u8) -> Canvas {
        Canvas {
            w,
            h,
            px: vec![fill; w * h],
        }
    }

    fn set(&mut self, x: i64, y: i64, v: u8) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            self.px[y as usize * self.w + x as usize] = v;
        }
    }

    fn get(&self, x: usize, y: usize) -> u8 {
        if x < self.w && y < self.h {
            self.px[y * self.w + x]
        } else {
            0
        }
    }

    /// A straight line of pixels from one point to the other (every step
    /// moves one pixel along the longer axis).
    fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64)) {
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as i64;
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let x = (x0 + (x1 - x0) * t).round() as i64;
            let y = (y0 + (y1 - y0) * t).round() as i64;
            self.set(x, y, 1);
        }
    }

    /// Each character holds 2x4 pixels as a Braille pattern (U+2800 plus
    /// one bit per raised dot); one line per four pixel rows.
    fn render_braille(&self) -> String {
        // Bit of the dot at (dx, dy) within a cell.
        const DOT: [[u32; 4]; 2] = [[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]];
        let mut out = String::new();
        for cy in (0..self.h).step_by(4) {
            for cx in (0..self.w).step_by(2) {
                let mut bits = 0u32;
                for (dx, column) in DOT.iter().enumerate() {
                    for (dy, bit) in column.iter().enumerate() {
                        if self.get(cx + dx, cy + dy) != 0 {
                            bits |= bit;
                        }
                    }
                }
                out.push(char::from_u32(0x2800 + bits).unwrap_or(' '));
            }
            out.push('\n');
        }
        out
    }

    /// One space per pixel, coloured by its shade (black, dark grey,
    /// grey, white).
    fn render_shades(&self) -> String {
        const SHADES: [&str; 4] = ["30;40", "90;100", "37;47", "97;107"];
        let mut out = String::new();
        for y in 0..self.h {
            for x in 0..self.w {
                out.push_str("\x1b[0;");
                out.push_str(SHADES[usize::from(self.get(x, y) & 3)]);
                out.push_str("m \x1b[0m");
            }
            out.push('\n');
        }
        out
    }
}

/// Squares in rows and columns, the first two rows in order, then each row
/// turned and moved more at random than the one above it.
fn schotter(cols: usize, per_row: usize, per_col: usize) -> Canvas {
    let width = cols * 2;
    let pad = if width > 4 { 2 } else { 0 };
    let side = (width - pad * 2) as f64 / per_row as f64;
    let height = (side * per_col as f64) as usize + pad * 2;
    let mut c = Canvas::new(width, height, 0);
    let signed = |scale: f64| (unit() * 2.0 - 1.0) * scale;
    for row in 0..per_col {
        for col in 0..per_row {
            let mut cx = col as f64 * side + side / 2.0 + pad as f64;
            let mut cy = row as f64 * side + side / 2.0 + pad as f64;
            let mut angle = 0.0;
            if row > 1 {
                let disorder = row as f64 / per_col as f64;
                angle = signed(disorder);
                cx += signed(disorder) * side / 3.0;
                cy += signed(disorder) * side / 3.0;
            }
            let half = side / 2.0;
            let (sin, cos) = f64::sin_cos(angle);
            let corner = |dx: f64, dy: f64| (cx + dx * cos - dy * sin, cy + dx * sin + dy * cos);
            let pts = [
                corner(-half, -half),
                corner(half, -half),
                corner(half, half),
                corner(-half, half),
            ];
            for i in 0..4 {
                c.line(pts[i], pts[(i + 1) % 4]);
            }
        }
    }
    c
}

/// A white sky over three rows of buildings, the farthest lightest; each
/// building has a darker body and lit windows.
fn skyline(cols: usize, rows: usize) -> Canvas {
    let mut c = Canvas::new(cols, rows, 3);
    // (body shade, window shade, the tallest building as a share of rows)
    let layers = [(2u8, 3u8, 0.9), (1, 2, 0.7), (0, 1, 0.5)];
    for (body, window, tallest) in layers {
        let mut x = (rand::u64() % 4) as usize;
        while x < cols {
            let w = 3 + (rand::u64() % 8) as usize;
            let max_h = ((rows as f64 * tallest) as usize).max(1);
            let h = 1 + (rand::u64() % max_h as u64) as usize;
            let top = rows - h;
            for bx in x..(x + w).min(cols) {
                for by in top..rows {
                    // Windows: every other column and row inside the body.
                    let inside = bx > x && bx + 1 < x + w && by > top;
                    let lit = inside && (bx - x) % 2 == 1 && (by - top) % 2 == 1;
                    c.set(bx as i64, by as i64, if lit { window } else { body });
                }
            }
            x += w + (rand::u64() % 5) as usize;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_have_the_requested_size() {
        let s = schotter(3, 1, 1).render_braille();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.chars().count() == 3));
        assert_eq!(schotter(1, 1, 1).render_braille().lines().count(), 1);
        // The default: 66 columns, 8x12 squares of 16 pixels, 2 of padding.
        assert_eq!(schotter(66, 8, 12).render_braille().lines().count(), 49);
        let sky = skyline(3, 2).render_shades();
        assert_eq!(sky.lines().count(), 2);
        assert_eq!(sky.lines().next().unwrap().matches("m \x1b[0m").count(), 3);
    }
}
