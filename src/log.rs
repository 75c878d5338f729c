//! Redis-style log lines: `pid:M 26 Nov 2026 10:41:14.123 * message`.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

pub const DEBUG: usize = 0;
pub const VERBOSE: usize = 1;
pub const NOTICE: usize = 2;
pub const WARNING: usize = 3;

static LEVEL: AtomicUsize = AtomicUsize::new(NOTICE);
static SINK: Mutex<Option<std::fs::File>> = Mutex::new(None);

pub fn set_level(level: usize) {
    LEVEL.store(level, Ordering::Relaxed);
}

/// Sends log lines to `path` (appending) instead of stdout.
pub fn set_file(path: &str) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    crate::crash::set_fd(std::os::fd::AsRawFd::as_raw_fd(&f));
    *SINK.lock() = Some(f);
    Ok(())
}

pub fn enabled(level: usize) -> bool {
    level >= LEVEL.load(Ordering::Relaxed)
}

pub(crate) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Civil date from days since 1970-01-01 (proleptic Gregorian).
pub(crate) fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

pub fn log(level: usize, msg: &str) {
    if !enabled(level) {
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let mark = ['.', '-', '*', '#'][level.min(3)];
    let line = format!(
        "{}:M {:02} {} {} {:02}:{:02}:{:02}.{:03} {} {}\n",
        std::process::id(),
        d,
        MONTHS[(m - 1) as usize],
        y,
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        now.subsec_millis(),
        mark,
        msg
    );
    let mut sink = SINK.lock();
    match sink.as_mut() {
        Some(f) => {
            let _ = f.write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stdout().lock().write_all(line.as_bytes());
        }
    }
}

#[macro_export]
macro_rules! notice { ($($t:tt)*) => { $crate::log::log($crate::log::NOTICE, &format!($($t)*)) } }
#[macro_export]
macro_rules! warning { ($($t:tt)*) => { $crate::log::log($crate::log::WARNING, &format!($($t)*)) } }
#[macro_export]
macro_rules! verbose { ($($t:tt)*) => { $crate::log::log($crate::log::VERBOSE, &format!($($t)*)) } }
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::log::log($crate::log::DEBUG, &format!($($t)*)) } }

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil(0), (1970, 1, 1));
        assert_eq!(super::civil(20_418), (2025, 11, 26));
    }
}
