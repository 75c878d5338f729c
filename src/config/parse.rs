//! Parsing and printing parameter values, with Redis 7.0's error texts.

use super::params::notify;
use super::{IntParam, Kind};

/// A parsed value, before [`super::Config::apply`] stores it.
pub(super) enum Value {
    Int(i64),
    Bool(bool),
    Enum(usize),
    Str(String),
    Notify(u32),
    Limits([[i64; 3]; 3]),
}

pub(super) fn parse_value(name: &str, kind: Kind<'_>, s: &str) -> Result<Value, String> {
    Ok(match kind {
        Kind::Int(p) => Value::Int(parse_int(p, s)?),
        Kind::Bool(_) => match s.to_ascii_lowercase().as_str() {
            "yes" => Value::Bool(true),
            "no" => Value::Bool(false),
            _ => return Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Enum(p) => match p.names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            Some(i) => Value::Enum(i),
            None => {
                return Err(format!(
                    "argument(s) must be one of the following: {}",
                    p.names.join(", ")
                ));
            }
        },
        Kind::Str(_) if name == "latency-tracking-info-percentiles" => {
            Value::Str(parse_percentiles(s)?)
        }
        Kind::Str(_) if name == "unixsocketperm" => Value::Str(crate::server::unix::parse_perm(s)?),
        Kind::Str(_) if name == "oom-score-adj-values" => {
            Value::Str(crate::server::oom::parse_values(s)?)
        }
        Kind::Str(_) if name.starts_with("shutdown-on-sig") => {
            Value::Str(crate::server::shutdown::parse_flags(s)?)
        }
        Kind::Str(_) if name == "proc-title-template" => {
            crate::server::title::validate(s)?;
            Value::Str(s.to_string())
        }
        Kind::Str(_) if name == "maxmemory-clients" => Value::Str(parse_maxmemory_clients(s)?),
        Kind::Str(_) => Value::Str(s.to_string()),
        Kind::Save(_) => Value::Str(parse_save(s).ok_or("Invalid save parameters")?),
        Kind::Notify(_) => Value::Notify(
            parse_notify(s).ok_or("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")?,
        ),
        Kind::BufferLimits(p) => Value::Limits(parse_buffer_limits(p.all(), s)?),
    })
}

/// `latency-tracking-info-percentiles`: numbers in [0, 100], printed back
/// in their shortest form (`50.0` -> `50`), with Redis 7.0's errors.
fn parse_percentiles(s: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for w in s.split_whitespace() {
        let v: f64 = w
            .parse::<f64>()
            .ok()
            .filter(|v| !v.is_nan())
            .ok_or("Invalid latency-tracking-info-percentiles parameters")?;
        if !(0.0..=100.0).contains(&v) {
            return Err(
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                    .into(),
            );
        }
        out.push(format!("{v}"));
    }
    Ok(out.join(" "))
}

/// `maxmemory-clients`: a memory value (kept as bytes) or a whole
/// percentage of `maxmemory` (kept as `N%`), with Redis 7.0's errors.
fn parse_maxmemory_clients(s: &str) -> Result<String, String> {
    const BAD: &str = "argument must be a memory or percent value";
    match s.strip_suffix('%') {
        Some(pct) => {
            let v = crate::util::num::parse_i64(pct.as_bytes())
                .filter(|v| *v >= 0)
                .ok_or(BAD)?;
            if v > 100 {
                return Err("percentage argument must be less or equal to 100".into());
            }
            // Redis keeps a percentage as a negative number: 0% is plain 0.
            Ok(if v == 0 { "0".into() } else { format!("{v}%") })
        }
        None => Ok(parse_memory(s).ok_or(BAD)?.to_string()),
    }
}

pub(super) fn value_str(v: &Value) -> &str {
    match v {
        Value::Str(s) => s,
        _ => "",
    }
}

/// Whether the working directory can move to `path`; the error is the
/// system's words, as Redis gives them.
pub(super) fn check_dir(path: &str) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err("Not a directory".into()),
        Err(e) => Err(ferrokv_util::repr::strerror(&e)),
    }
}

fn parse_int(p: &IntParam, s: &str) -> Result<i64, String> {
    let v = if p.memory {
        parse_memory(s)
    } else {
        crate::util::num::parse_i64(s.as_bytes())
    };
    let v = v.ok_or_else(|| {
        if p.memory {
            "argument must be a memory value".to_string()
        } else {
            "argument couldn't be parsed into an integer".to_string()
        }
    })?;
    if v < p.min || v > p.max {
        return Err(format!(
            "argument must be between {} and {} inclusive",
            p.min, p.max
        ));
    }
    Ok(match p.clamp {
        Some((lo, hi)) => v.clamp(lo, hi),
        None => v,
    })
}

/// Parses a memory value as Redis's memtoull: digits, then an optional unit
/// (`b`, `k`/`m`/`g` powers of 1000, `kb`/`mb`/`gb` powers of 1024, any
/// case). No sign, no spaces, no fraction; an empty string is 0.
pub fn parse_memory(s: &str) -> Option<i64> {
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    let mul: i64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let n: i64 = if num.is_empty() { 0 } else { num.parse().ok()? };
    n.checked_mul(mul)
}

/// `save`: an empty value disables snapshots; otherwise pairs of seconds (>= 1)
/// and changes (>= 0). Returns the canonical form CONFIG GET prints.
fn parse_save(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some(String::new());
    }
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.is_empty() || !parts.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        let v: i64 = p.strip_prefix('+').unwrap_or(p).parse().ok()?;
        if (i % 2 == 0 && v < 1) || v < 0 {
            return None;
        }
        out.push(v.to_string());
    }
    Some(out.join(" "))
}

fn parse_notify(s: &str) -> Option<u32> {
    let mut flags = 0;
    for c in s.chars() {
        flags |= match c {
            'A' => notify::ALL,
            'K' => notify::KEYSPACE,
            'E' => notify::KEYEVENT,
            'm' => notify::KEY_MISS,
            _ => notify::LETTERS.iter().find(|(l, _)| *l == c)?.1,
        };
    }
    Some(flags)
}

pub(super) fn notify_to_string(flags: u32) -> String {
    let mut s = String::new();
    if flags & notify::ALL == notify::ALL {
        s.push('A');
    } else {
        s.extend(
            notify::LETTERS
                .iter()
                .filter(|(_, f)| flags & f != 0)
                .map(|(l, _)| *l),
        );
    }
    for (l, f) in [
        ('K', notify::KEYSPACE),
        ('E', notify::KEYEVENT),
        ('m', notify::KEY_MISS),
    ] {
        if flags & f != 0 {
            s.push(l);
        }
    }
    s
}

/// `client-output-buffer-limit`: groups of `<class> <hard> <soft> <seconds>`;
/// classes not named keep their current limits.
fn parse_buffer_limits(mut cur: [[i64; 3]; 3], s: &str) -> Result<[[i64; 3]; 3], String> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if !parts.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    for group in parts.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into());
            }
        };
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
        let hard = parse_memory(group[1]).ok_or_else(bad)?;
        let soft = parse_memory(group[2]).ok_or_else(bad)?;
        let secs: i64 = group[3].parse().ok().filter(|v| *v >= 0).ok_or_else(bad)?;
        cur[class] = [hard, soft, secs];
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("100k"), Some(100_000));
        assert_eq!(parse_memory("512MB"), Some(512 << 20));
        assert_eq!(parse_memory(""), Some(0));
        assert_eq!(parse_memory("x"), None);
        assert_eq!(parse_memory("-1"), None);
        assert_eq!(parse_memory("1.5gb"), None);
    }

    #[test]
    fn notify_classes_round_trip_as_redis_prints_them() {
        assert_eq!(notify_to_string(parse_notify("KEA").unwrap()), "AKE");
        assert_eq!(
            notify_to_string(parse_notify("Ag$lshzxeKEtmdn").unwrap()),
            "AKEm"
        );
        assert_eq!(notify_to_string(parse_notify("xK").unwrap()), "xK");
        assert!(parse_notify("Q").is_none());
    }

    #[test]
    fn save_values() {
        assert_eq!(parse_save("100 1 200 2").as_deref(), Some("100 1 200 2"));
        assert_eq!(parse_save("").as_deref(), Some(""));
        assert!(parse_save("  ").is_none());
        assert!(parse_save("100").is_none());
        assert!(parse_save("0 1").is_none());
    }
}
