//! redis.conf text: split into directives (the start-up path: lines,
//! comments, quoting) and applied to a fresh configuration at start-up and
//! as CONFIG SET would. Never a panic; a quoted re-rendering of a line's
//! arguments splits back to the same arguments; and a value that was
//! accepted reads back (CONFIG GET) as a value that is accepted again and
//! reads back the same (what CONFIG REWRITE relies on).
#![no_main]

use ferrokv::config::{Config, file::split_line};
use libfuzzer_sys::fuzz_target;

fn quote(args: &[String]) -> String {
    let mut out = String::new();
    for a in args {
        out.push_str(" \"");
        for &c in a.as_bytes() {
            match c {
                b'\\' | b'"' => {
                    out.push('\\');
                    out.push(c as char);
                }
                0x20..=0x7e => out.push(c as char),
                _ => out.push_str(&format!("\\x{c:02x}")),
            }
        }
        out.push('"');
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let startup = Config::default();
    let runtime = Config::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Ok(args) = split_line(line) else {
            continue;
        };
        assert_eq!(split_line(&quote(&args)).ok().as_ref(), Some(&args));
        let Some((name, values)) = args.split_first() else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        for (config, at_runtime) in [(&startup, false), (&runtime, true)] {
            if config.set(&name, &values, at_runtime).is_err() {
                continue;
            }
            let param = config.find(&name).expect("a parameter just set exists");
            let shown = Config::get_value(&param);
            if param.name == "dir" {
                continue; // reported as the working directory
            }
            let again = Config::default();
            again
                .set(param.name, &[&shown], at_runtime)
                .unwrap_or_else(|e| {
                    panic!("{} {shown:?} (from {values:?}) refused: {e:?}", param.name)
                });
            let p2 = again.find(param.name).unwrap();
            assert_eq!(Config::get_value(&p2), shown, "{}", param.name);
        }
    }
});
