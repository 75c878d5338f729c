//! `oom-score-adj` and `oom-score-adj-values`: the Linux OOM killer's
//! preference for this process (`/proc/self/oom_score_adj`), by role, as
//! Redis sets it.
//!
//! The three values are for a master, a replica and the background-save
//! child (the stand-in of `persist::child`). `relative` (or `yes`) adds
//! them to the score the process had when ferrokv first took control;
//! `absolute` writes them as they are; the result is clamped to the
//! kernel's -1000..=1000. `no` leaves the file alone, and turning it off
//! after it was on puts the original score back. The original is read
//! again each time control is taken, so a score an operator set while it
//! was off is the base of the next adjustment.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use crate::config::Config;

/// `oom-score-adj`'s names, in CONFIG's order (`yes` means `relative`).
pub const MODES: &[&str] = &["no", "yes", "relative", "absolute"];
const MODE_ABSOLUTE: usize = 3;

/// The process classes, indexes into `oom-score-adj-values`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Class {
    Master = 0,
    Replica = 1,
    BackgroundChild = 2,
}

const PROC_FILE: &str = "/proc/self/oom_score_adj";

/// The score before ferrokv changed it, while it has changed it.
static BASE: Mutex<Option<i64>> = Mutex::new(None);

/// Whether this server follows a master (a replica's score class). Set by
/// the replication code through [`set_replica`].
static REPLICA: AtomicBool = AtomicBool::new(false);

/// The error CONFIG SET gives when the score cannot be written.
pub const SET_FAILED: &str = "Failed to set current oom_score_adj. Check server logs.";

/// Parses `oom-score-adj-values` as CONFIG SET and the config file take it:
/// exactly three integers separated by single spaces, each in
/// -2000..=2000. The result is the canonical form CONFIG GET prints.
pub fn parse_values(s: &str) -> Result<String, String> {
    let words: Vec<&str> = s.split(' ').collect();
    if words.len() != 3 {
        return Err("wrong number of arguments".into());
    }
    let mut values = [0i64; 3];
    for (slot, w) in values.iter_mut().zip(&words) {
        *slot = w
            .strip_prefix('+')
            .filter(|rest| !rest.starts_with(['-', '+']))
            .unwrap_or(w)
            .parse::<i64>()
            .ok()
            .filter(|v| (-2000..=2000).contains(v))
            .ok_or("Invalid oom-score-adj-values, elements must be between -2000 and 2000.")?;
    }
    if values[0] > values[1] || values[1] > values[2] {
        crate::warning!(
            "The oom-score-adj-values configuration may not work for non-privileged processes! Please consult the documentation."
        );
    }
    Ok(format!("{} {} {}", values[0], values[1], values[2]))
}

fn values(config: &Config) -> [i64; 3] {
    let mut out = [0i64; 3];
    config.oom_score_adj_values.with(|s| {
        for (slot, w) in out.iter_mut().zip(s.split(' ')) {
            *slot = w.parse().unwrap_or(0);
        }
    });
    out
}

fn read_score() -> Result<i64, String> {
    let text = std::fs::read_to_string(PROC_FILE).map_err(|e| e.to_string())?;
    text.trim().parse().map_err(|_| "not a number".to_string())
}

fn write_score(path: &str, v: i64) -> Result<(), String> {
    std::fs::write(path, format!("{v}\n")).map_err(|e| e.to_string())
}

/// The score `class` gets now, or `None` while `oom-score-adj` is `no`.
/// Takes control (remembering the original score) when it is not yet
/// taken.
fn target(config: &Config, class: Class) -> Result<Option<i64>, String> {
    let mode = config.oom_score_adj.get();
    if mode == 0 {
        return Ok(None);
    }
    let mut base = BASE.lock();
    let b = match *base {
        Some(b) => b,
        None => {
            let b = read_score().map_err(|e| {
                crate::warning!("Unable to read oom_score_adj: {e}");
                e
            })?;
            *base = Some(b);
            b
        }
    };
    let mut v = values(config)[class as usize];
    if mode != MODE_ABSOLUTE {
        v += b;
    }
    Ok(Some(v.clamp(-1000, 1000)))
}

/// Applies the configuration to this process, for its current role
/// (after a CONFIG SET of either parameter, at start-up, when the role
/// changes). With `oom-score-adj no` it restores the original score if
/// ferrokv had changed it, and otherwise touches nothing.
pub fn apply(config: &Config) -> Result<(), String> {
    let class = if REPLICA.load(Ordering::Relaxed) {
        Class::Replica
    } else {
        Class::Master
    };
    let v = match target(config, class)? {
        Some(v) => v,
        None => match BASE.lock().take() {
            Some(original) => original,
            None => return Ok(()),
        },
    };
    write_score(PROC_FILE, v).map_err(|e| {
        crate::warning!("Unable to write oom_score_adj: {e}");
        e
    })
}

/// Records whether this server is now a replica and applies the score of
/// its new class (REPLICAOF host port / REPLICAOF NO ONE).
pub fn set_replica(config: &Config, replica: bool) {
    REPLICA.store(replica, Ordering::Relaxed);
    let _ = apply(config);
}

/// The score the background-save child must give itself, if any (it
/// writes it to its own `/proc/self/oom_score_adj`).
pub fn child_score(config: &Config) -> Option<i64> {
    target(config, Class::BackgroundChild).ok().flatten()
}

/// In the background-save child: takes the score the server chose.
pub fn set_own_score(v: i64) {
    if let Err(e) = write_score(PROC_FILE, v) {
        crate::warning!("Unable to write oom_score_adj: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_three_bounded_integers() {
        assert_eq!(parse_values("0 200 800").unwrap(), "0 200 800");
        assert_eq!(parse_values("+1 -2 3").unwrap(), "1 -2 3");
        assert_eq!(
            parse_values("1  2 3").unwrap_err(),
            "wrong number of arguments"
        );
        assert_eq!(
            parse_values("1 2").unwrap_err(),
            "wrong number of arguments"
        );
        assert_eq!(parse_values("").unwrap_err(), "wrong number of arguments");
        assert!(
            parse_values("-2001 0 0")
                .unwrap_err()
                .contains("between -2000 and 2000")
        );
        assert!(parse_values("0 0 2001").is_err());
        assert!(parse_values("a 0 0").is_err());
        assert!(parse_values("+-1 0 0").is_err());
    }
}
