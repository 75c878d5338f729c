//! Geohashes as Redis's GEO commands use them: a point is a 52-bit integer
//! (26 bits of longitude and 26 of latitude, interleaved, longitude in the
//! odd bits) stored as the member's score in a sorted set. Latitudes are
//! limited to the Web Mercator range (±85.05112878°), as in Redis, so the
//! stored scores, the decoded positions and the cells a search visits are
//! the same as Redis's for the same input.
//!
//! A search covers the shape with the cell containing the centre and its
//! eight neighbours at a precision chosen from the radius ([`Areas::of`]);
//! each cell is one range of scores, whose members are then checked
//! against the shape itself.

/// Bits per coordinate at full precision.
pub const STEP_MAX: u8 = 26;
pub const LAT_MIN: f64 = -85.051_128_78;
pub const LAT_MAX: f64 = 85.051_128_78;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
/// The Earth's radius Redis's distances use, in meters.
pub const EARTH_RADIUS: f64 = 6_372_797.560_856;
/// Half the Earth's circumference in Web Mercator, in meters.
const MERCATOR_MAX: f64 = 20_037_726.37;

/// A cell: `bits` at precision `step` (`step * 2` bits). `step == 0` with
/// `bits == 0` is "no cell".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Cell {
    pub bits: u64,
    pub step: u8,
}

/// A cell's extent in degrees.
#[derive(Clone, Copy, Debug, Default)]
pub struct Area {
    pub long_min: f64,
    pub long_max: f64,
    pub lat_min: f64,
    pub lat_max: f64,
}

#[inline]
pub fn deg_rad(d: f64) -> f64 {
    d * (std::f64::consts::PI / 180.0)
}

#[inline]
pub fn rad_deg(r: f64) -> f64 {
    r / (std::f64::consts::PI / 180.0)
}

/// Spreads the low 32 bits of `v` over the even bits of the result.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Gathers the even bits of `v` into the low 32 bits.
fn gather(v: u64) -> u32 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
    x as u32
}

/// The cell of a point at precision `step` within the given ranges, or
/// `None` outside the Mercator limits (Redis checks them whatever the
/// ranges).
pub fn encode_in(
    (long_min, long_max): (f64, f64),
    (lat_min, lat_max): (f64, f64),
    long: f64,
    lat: f64,
    step: u8,
) -> Option<Cell> {
    if !(LONG_MIN..=LONG_MAX).contains(&long) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_off = (lat - lat_min) / (lat_max - lat_min) * scale;
    let long_off = (long - long_min) / (long_max - long_min) * scale;
    // Truncation toward zero, as a C cast to a 32-bit integer does.
    let bits = spread(lat_off as u32) | (spread(long_off as u32) << 1);
    Some(Cell { bits, step })
}

/// The cell of a point in the GEO commands' ranges.
pub fn encode(long: f64, lat: f64, step: u8) -> Option<Cell> {
    encode_in((LONG_MIN, LONG_MAX), (LAT_MIN, LAT_MAX), long, lat, step)
}

/// The 52-bit score of a point, or `None` outside the valid range.
pub fn score_of(long: f64, lat: f64) -> Option<u64> {
    encode(long, lat, STEP_MAX).map(|c| c.bits)
}

/// A cell's extent in the given ranges.
pub fn area_in(
    cell: Cell,
    (long_min, long_max): (f64, f64),
    (lat_min, lat_max): (f64, f64),
) -> Area {
    let lat_i = f64::from(gather(cell.bits));
    let long_i = f64::from(gather(cell.bits >> 1));
    let scale = (1u64 << cell.step) as f64;
    let (lat_span, long_span) = (lat_max - lat_min, long_max - long_min);
    Area {
        lat_min: lat_min + (lat_i / scale) * lat_span,
        lat_max: lat_min + ((lat_i + 1.0) / scale) * lat_span,
        long_min: long_min + (long_i / scale) * long_span,
        long_max: long_min + ((long_i + 1.0) / scale) * long_span,
    }
}

pub fn area(cell: Cell) -> Area {
    area_in(cell, (LONG_MIN, LONG_MAX), (LAT_MIN, LAT_MAX))
}

/// The position a stored score stands for: its cell's centre.
pub fn decode_score(score: f64) -> (f64, f64) {
    let a = area(Cell {
        bits: score as u64,
        step: STEP_MAX,
    });
    let long = ((a.long_min + a.long_max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((a.lat_min + a.lat_max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (long, lat)
}

/// The standard 11-character geohash string of a stored score (GEOHASH):
/// re-encoded with latitudes in ±90°; the 11th character stands for bits
/// Redis does not have and is always `0`.
pub fn hash_string(score: f64) -> Option<[u8; 11]> {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (long, lat) = decode_score(score);
    let cell = encode_in((-180.0, 180.0), (-90.0, 90.0), long, lat, STEP_MAX)?;
    let mut out = [b'0'; 11];
    for (i, c) in out.iter_mut().enumerate().take(10) {
        let idx = (cell.bits >> (52 - (i + 1) * 5)) & 0x1f;
        *c = ALPHABET[idx as usize];
    }
    Some(out)
}

/// Distance along a meridian between two latitudes, in meters.
pub fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// Great-circle distance (haversine) in meters.
pub fn distance(long1: f64, lat1: f64, long2: f64, lat2: f64) -> f64 {
    let (lat1r, lat2r) = (deg_rad(lat1), deg_rad(lat2));
    let v = ((deg_rad(long2) - deg_rad(long1)) / 2.0).sin();
    // Same longitude: the plain meridian distance (no trigonometry).
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS * a.sqrt().asin()
}

/// The shape of a search, in meters around `center` (longitude, latitude).
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    Radius(f64),
    Box { width: f64, height: f64 },
}

impl Shape {
    /// The distance from `center` to the point when the point is inside.
    pub fn contains(&self, center: (f64, f64), p: (f64, f64)) -> Option<f64> {
        match *self {
            Shape::Radius(r) => {
                let d = distance(center.0, center.1, p.0, p.1);
                (d <= r).then_some(d)
            }
            Shape::Box { width, height } => {
                // The cheaper latitude test first.
                if lat_distance(p.1, center.1) > height / 2.0 {
                    return None;
                }
                // The width is measured along the point's own parallel.
                if distance(p.0, p.1, center.0, p.1) > width / 2.0 {
                    return None;
                }
                Some(distance(center.0, center.1, p.0, p.1))
            }
        }
    }

    /// Distance from the centre to the farthest point of the shape.
    fn reach(&self) -> f64 {
        match *self {
            Shape::Radius(r) => r,
            Shape::Box { width, height } => ((width / 2.0).powi(2) + (height / 2.0).powi(2)).sqrt(),
        }
    }

    /// `(long_min, lat_min, long_max, lat_max)` of the shape.
    fn bounds(&self, (long, lat): (f64, f64)) -> (f64, f64, f64, f64) {
        let (half_w, half_h) = match *self {
            Shape::Radius(r) => (r, r),
            Shape::Box { width, height } => (width / 2.0, height / 2.0),
        };
        let lat_delta = rad_deg(half_h / EARTH_RADIUS);
        let long_delta_top = rad_deg(half_w / EARTH_RADIUS / deg_rad(lat + lat_delta).cos());
        let long_delta_bottom = rad_deg(half_w / EARTH_RADIUS / deg_rad(lat - lat_delta).cos());
        // The widest edge is the one nearer the pole.
        let long_delta = if lat < 0.0 {
            long_delta_bottom
        } else {
            long_delta_top
        };
        (
            long - long_delta,
            lat - lat_delta,
            long + long_delta,
            lat + lat_delta,
        )
    }
}

/// The precision whose cells are about as large as the search reach at
/// latitude `lat` (coarser towards the poles).
fn steps_for(mut reach: f64, lat: f64) -> u8 {
    if reach == 0.0 {
        return STEP_MAX;
    }
    let mut step: i32 = 1;
    while reach < MERCATOR_MAX {
        reach *= 2.0;
        step += 1;
    }
    // Err on the larger cell so the shape fits in the nine.
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, i32::from(STEP_MAX)) as u8
}

/// Moves a cell `d` cells east (+1) or west (-1): longitude is in the odd
/// bits, so the carry must skip the even ones.
fn move_long(c: Cell, d: i8) -> Cell {
    move_bits(c, d, 0xaaaa_aaaa_aaaa_aaaa)
}

/// Moves a cell north (+1) or south (-1).
fn move_lat(c: Cell, d: i8) -> Cell {
    move_bits(c, d, 0x5555_5555_5555_5555)
}

fn move_bits(c: Cell, d: i8, mask: u64) -> Cell {
    if d == 0 || c.step == 0 {
        return c;
    }
    let shift = 64 - u32::from(c.step) * 2;
    let mine = c.bits & mask;
    let other = c.bits & !mask;
    // Ones in every position of the other coordinate: adding 1 past them
    // carries straight into this coordinate's next bit.
    let fill = (!mask) >> shift;
    let moved = if d > 0 {
        mine.wrapping_add(fill + 1)
    } else {
        (mine | fill).wrapping_sub(fill + 1)
    };
    Cell {
        bits: (moved & (mask >> shift)) | other,
        step: c.step,
    }
}

/// The cells a search visits, in the order it visits them: the centre's,
/// then north, south, east, west, north-east, north-west, south-east,
/// south-west (a neighbour that cannot hold a match is "no cell").
pub struct Areas {
    pub cells: [Cell; 9],
}

impl Areas {
    pub fn of(shape: &Shape, center: (f64, f64)) -> Areas {
        let (long_min, lat_min, long_max, lat_max) = shape.bounds(center);
        let mut steps = steps_for(shape.reach(), center.1);
        let mut cell = encode(center.0, center.1, steps).unwrap_or_default();
        let mut n = neighbours(cell);
        // At the edges the estimate can leave part of the shape outside the
        // nine cells: one step coarser then.
        let too_fine = area(n[0]).lat_max < lat_max
            || area(n[1]).lat_min > lat_min
            || area(n[2]).long_max < long_max
            || area(n[3]).long_min > long_min;
        if steps > 1 && too_fine {
            steps -= 1;
            cell = encode(center.0, center.1, steps).unwrap_or_default();
            n = neighbours(cell);
        }
        let [
            mut north,
            mut south,
            mut east,
            mut west,
            mut ne,
            mut nw,
            mut se,
            mut sw,
        ] = n;
        if steps >= 2 {
            let a = area(cell);
            let none = Cell::default();
            if a.lat_min < lat_min {
                (south, sw, se) = (none, none, none);
            }
            if a.lat_max > lat_max {
                (north, ne, nw) = (none, none, none);
            }
            if a.long_min < long_min {
                (west, sw, nw) = (none, none, none);
            }
            if a.long_max > long_max {
                (east, se, ne) = (none, none, none);
            }
        }
        Areas {
            cells: [cell, north, south, east, west, ne, nw, se, sw],
        }
    }
}

/// North, south, east, west, north-east, north-west, south-east,
/// south-west of `c`.
fn neighbours(c: Cell) -> [Cell; 8] {
    let (n, s) = (move_lat(c, 1), move_lat(c, -1));
    [
        n,
        s,
        move_long(c, 1),
        move_long(c, -1),
        move_long(n, 1),
        move_long(n, -1),
        move_long(s, 1),
        move_long(s, -1),
    ]
}

/// The scores a cell covers, `[min, max)` at full precision.
pub fn score_range(c: Cell) -> (u64, u64) {
    let shift = 52 - u32::from(c.step) * 2;
    (c.bits << shift, (c.bits + 1) << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_and_positions_match_redis() {
        // GEOADD Sicily 13.361389 38.115556 "Palermo": Redis stores this
        // score and answers these GEOPOS / GEOHASH values.
        let s = score_of(13.361389, 38.115556).unwrap();
        assert_eq!(s, 3_479_099_956_230_698);
        let (long, lat) = decode_score(s as f64);
        assert_eq!(format!("{long:.17}"), "13.36138933897018433");
        assert_eq!(format!("{lat:.17}"), "38.11555639549629859");
        assert_eq!(&hash_string(s as f64).unwrap(), b"sqc8b49rny0");
        let c = score_of(15.087269, 37.502669).unwrap() as f64;
        let (l2, t2) = decode_score(c);
        let d = distance(long, lat, l2, t2);
        assert_eq!(format!("{:.4}", d), "166274.1516");
    }

    #[test]
    fn spread_and_gather_are_inverse() {
        for v in [0u32, 1, 0x3ff_ffff, 0x155_5555, 12345] {
            assert_eq!(gather(spread(v)), v);
        }
    }

    #[test]
    fn neighbours_wrap_within_the_step() {
        let c = encode(0.0, 0.0, 4).unwrap();
        let e = move_long(c, 1);
        let w = move_long(e, -1);
        assert_eq!(w, c);
        let n = move_lat(c, 1);
        assert_eq!(move_lat(n, -1), c);
        assert!(area(e).long_min >= area(c).long_max - 1e-9);
    }

    #[test]
    fn out_of_range_points_have_no_cell() {
        assert!(score_of(180.1, 0.0).is_none());
        assert!(score_of(0.0, 85.06).is_none());
        assert!(score_of(-180.0, -85.05112878).is_some());
    }
}
