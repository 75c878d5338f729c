//! Shutdown by signal: `shutdown-on-sigterm` / `shutdown-on-sigint`, the
//! pending state SHUTDOWN ABORT cancels, and the "you insist" exit.
//!
//! As in Redis, a signal only schedules the shutdown; the cron carries it
//! out at its next tick (so DEBUG PAUSE-CRON holds it, and SHUTDOWN ABORT
//! can cancel it until then). A second SIGINT while one is scheduled or
//! saving ends the process at once, deleting the temp RDB file.

use parking_lot::Mutex;

use super::Server;

/// What a signal's shutdown does, from its `shutdown-on-*` parameter.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Flags {
    /// Save even without save points.
    pub save: bool,
    /// Never save.
    pub nosave: bool,
    /// Do not wait for lagging replicas (ferrokv never waits for them).
    pub now: bool,
    /// Exit even if the final save fails.
    pub force: bool,
}

const NAMES: &str = "default, save, nosave, now, force";

/// Parses a `shutdown-on-sig*` value (words from `default save nosave now
/// force`, any case, combinable) into the form CONFIG GET prints: the
/// flags in that order, or `default` when none is set.
pub fn parse_flags(s: &str) -> Result<String, String> {
    let bad = || format!("argument(s) must be one of the following: {NAMES}");
    let mut f = Flags::default();
    let mut any = false;
    for w in s.split_whitespace() {
        any = true;
        match w.to_ascii_lowercase().as_str() {
            "default" => {}
            "save" => f.save = true,
            "nosave" => f.nosave = true,
            "now" => f.now = true,
            "force" => f.force = true,
            _ => return Err(bad()),
        }
    }
    if !any {
        return Err(bad());
    }
    if f.save && f.nosave {
        return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
    }
    Ok(render(f))
}

fn render(f: Flags) -> String {
    let words: Vec<&str> = [
        (f.save, "save"),
        (f.nosave, "nosave"),
        (f.now, "now"),
        (f.force, "force"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, w)| *w)
    .collect();
    if words.is_empty() {
        "default".into()
    } else {
        words.join(" ")
    }
}

/// The flags a stored (canonical) value stands for.
fn flags_of(s: &str) -> Flags {
    let mut f = Flags::default();
    for w in s.split_whitespace() {
        match w {
            "save" => f.save = true,
            "nosave" => f.nosave = true,
            "now" => f.now = true,
            "force" => f.force = true,
            _ => {}
        }
    }
    f
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Idle,
    /// A signal asked; the cron has not started on it (SHUTDOWN ABORT can
    /// cancel it).
    Scheduled(&'static str),
    /// The cron is saving before the exit.
    Running(&'static str),
}

static STATE: Mutex<State> = Mutex::new(State::Idle);

/// A signal arrived (the signal thread). Returns false when it is a
/// second SIGINT while a shutdown is under way: the caller exits at once.
pub fn signalled(which: &'static str) -> bool {
    let mut st = STATE.lock();
    if which == "SIGINT" && *st != State::Idle {
        return false;
    }
    if let State::Idle = *st {
        *st = State::Scheduled(which);
    }
    true
}

/// SHUTDOWN ABORT: cancels a scheduled shutdown; false when there is none.
pub fn abort() -> bool {
    let mut st = STATE.lock();
    if let State::Scheduled(_) = *st {
        *st = State::Idle;
        crate::warning!("Shutdown manually aborted.");
        return true;
    }
    false
}

/// The cron's part: carries out a scheduled shutdown. True when the
/// process may exit now; false (and the schedule dropped) when the final
/// save failed, as Redis keeps running then.
pub fn cron(srv: &'static Server) -> bool {
    let which = {
        let mut st = STATE.lock();
        let State::Scheduled(which) = *st else {
            return false;
        };
        *st = State::Running(which);
        which
    };
    let param = if which == "SIGINT" {
        &srv.config.shutdown_on_sigint
    } else {
        &srv.config.shutdown_on_sigterm
    };
    let flags = param.with(flags_of);
    crate::notice!("User requested shutdown...");
    if crate::persist::save::before_signal_exit(srv, flags) {
        return true;
    }
    crate::warning!(
        "{which} received but errors trying to shut down the server, check the logs for more information"
    );
    *STATE.lock() = State::Idle;
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_combine_and_print_in_order() {
        assert_eq!(parse_flags("now save force").unwrap(), "save now force");
        assert_eq!(parse_flags("default now").unwrap(), "now");
        assert_eq!(parse_flags("NOSAVE default").unwrap(), "nosave");
        assert_eq!(parse_flags("default").unwrap(), "default");
        assert!(
            parse_flags("")
                .unwrap_err()
                .starts_with("argument(s) must be")
        );
        assert!(parse_flags("force bad").is_err());
        assert_eq!(
            parse_flags("save nosave").unwrap_err(),
            "shutdown options SAVE and NOSAVE can't be used simultaneously"
        );
        assert_eq!(
            flags_of("save now force"),
            Flags {
                save: true,
                nosave: false,
                now: true,
                force: true
            }
        );
    }
}
