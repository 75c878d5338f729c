//! The `ferrokv` binary: redis-server's command line.
//!
//! `ferrokv [/path/to/redis.conf] [--name value ...]`

use ferrokv::config::{Config, SetError, split_line};
use ferrokv::server::{self, Server};

#[global_allocator]
static GLOBAL: ferrokv::alloc::Counting<mimalloc::MiMalloc> =
    ferrokv::alloc::Counting(mimalloc::MiMalloc);

/// One directive: its line in the config file (0 for the command line) and its words.
type Directive = (usize, Vec<String>);

/// The config file's path, if any, and every directive in the order applied.
fn collect_directives(argv: &[String]) -> anyhow::Result<(Option<String>, Vec<Directive>)> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut config_file = None;
    if let Some(first) = argv.first()
        && !first.starts_with("--")
    {
        let path = first.clone();
        if path != "-" {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                anyhow::anyhow!("Fatal error, can't open config file '{path}': {e}")
            })?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                match split_line(line) {
                    Ok(args) if !args.is_empty() => out.push((n + 1, args)),
                    Ok(_) => {}
                    Err(_) => fatal_config(n + 1, line, "Unbalanced quotes in configuration line"),
                }
            }
            config_file = std::fs::canonicalize(&path)
                .ok()
                .map(|p| p.display().to_string());
        }
        i = 1;
    }
    let mut cur: Option<Vec<String>> = None;
    while i < argv.len() {
        let a = &argv[i];
        if let Some(name) = a.strip_prefix("--") {
            if let Some(c) = cur.take() {
                out.push((0, c));
            }
            cur = Some(vec![name.to_string()]);
        } else if let Some(c) = cur.as_mut() {
            c.push(a.clone());
        } else {
            anyhow::bail!("Invalid argument: {a}");
        }
        i += 1;
    }
    if let Some(c) = cur {
        out.push((0, c));
    }
    Ok((config_file, out))
}

fn fatal_config(line: usize, text: &str, reason: &str) -> ! {
    eprintln!(
        "\n*** FATAL CONFIG FILE ERROR (Redis {}) ***",
        ferrokv::REDIS_VERSION
    );
    if line > 0 {
        eprintln!("Reading the configuration file, at line {line}");
    } else {
        eprintln!("Reading the configuration file, at line 2");
    }
    eprintln!(">>> '{text}'");
    eprintln!("{reason}");
    std::process::exit(1);
}

/// Descriptors Redis keeps for itself beyond one per client.
const RESERVED_FDS: libc::rlim_t = 32;

/// Raises the open-files limit to what `maxclients` needs, as Redis does at
/// start-up; if the hard limit forbids it, lowers `maxclients` to fit.
fn adjust_open_files_limit(config: &Config) {
    let maxclients = config.maxclients.get().max(1) as libc::rlim_t;
    let needed = maxclients + RESERVED_FDS;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read or write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        ferrokv::warning!(
            "Unable to obtain the current NOFILE limit ({}), assuming 1024 and setting the max clients configuration accordingly.",
            std::io::Error::last_os_error()
        );
        config.maxclients.set(1024 - RESERVED_FDS as i64);
        return;
    }
    let old = lim.rlim_cur;
    if old >= needed {
        return;
    }
    // First ask for both limits (possible when privileged), then for the
    // soft limit up to the hard one.
    let both = libc::rlimit {
        rlim_cur: needed,
        rlim_max: needed.max(lim.rlim_max),
    };
    let soft = libc::rlimit {
        rlim_cur: needed.min(lim.rlim_max),
        rlim_max: lim.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &both) } == 0 {
        ferrokv::notice!(
            "Increased maximum number of open files to {needed} (it was originally set to {old})."
        );
        return;
    }
    let why = std::io::Error::last_os_error();
    // SAFETY: as above.
    let got = if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft) } == 0 {
        soft.rlim_cur
    } else {
        old
    };
    if got >= needed {
        ferrokv::notice!(
            "Increased maximum number of open files to {got} (it was originally set to {old})."
        );
        return;
    }
    let reduced = got.saturating_sub(RESERVED_FDS).max(1);
    ferrokv::warning!(
        "You requested maxclients of {maxclients} requiring at least {needed} max file descriptors."
    );
    ferrokv::warning!(
        "Server can't set maximum open files to {needed} because of OS error: {why}."
    );
    ferrokv::warning!(
        "Current maximum open files is {got}. maxclients has been reduced to {reduced} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."
    );
    config.maxclients.set(reduced as i64);
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "-v" || a == "--version") {
        println!(
            "ferrokv v={} (Redis compatible v={}) malloc=mimalloc bits=64",
            ferrokv::VERSION,
            ferrokv::REDIS_VERSION
        );
        return;
    }
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        println!("Usage: ferrokv [/path/to/redis.conf] [options]");
        println!(
            "Examples:\n  ferrokv (run in memory on port 6379)\n  ferrokv --port 7777\n  ferrokv /etc/redis/6379.conf --loglevel verbose"
        );
        return;
    }
    let (config_file, directives) = match collect_directives(&argv) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let config = Config::default();
    let mut unimplemented = Vec::new();
    for (line, args) in &directives {
        let name = args[0].to_ascii_lowercase();
        let values: Vec<&str> = args[1..].iter().map(|s| s.as_str()).collect();
        match config.set(&name, &values, false) {
            Ok(()) => {}
            Err(SetError::Unknown) if ferrokv::config::is_redis_directive(&name) => {
                unimplemented.push(name)
            }
            Err(SetError::Unknown) => fatal_config(
                *line,
                &args.join(" "),
                "Bad directive or wrong number of arguments",
            ),
            Err(SetError::Immutable | SetError::Protected) => {
                unreachable!("start-up sets every parameter")
            }
            Err(SetError::Invalid(why)) => fatal_config(*line, &args.join(" "), &why),
        }
    }
    ferrokv::log::set_level(config.loglevel.get());
    let logfile = config.logfile.get();
    if !logfile.is_empty()
        && let Err(e) = ferrokv::log::set_file(&logfile)
    {
        eprintln!("Can't open the log file: {e}");
        std::process::exit(1);
    }
    for name in &unimplemented {
        ferrokv::warning!(
            "Directive '{name}' is a Redis option ferrokv does not implement yet; ignored"
        );
    }
    if !config.dir.get().is_empty()
        && let Err(e) = std::env::set_current_dir(config.dir.get())
    {
        eprintln!("Can't chdir to '{}': {e}", config.dir.get());
        std::process::exit(1);
    }
    adjust_open_files_limit(&config);
    ferrokv::store::Keyspace::seed_hash(ferrokv::util::rand::seed());
    let srv: &'static Server = Box::leak(Box::new(Server::new(config, config_file)));
    ferrokv::notice!("oO0OoO0OoO0Oo ferrokv is starting oO0OoO0OoO0Oo");
    ferrokv::notice!(
        "ferrokv version={} (Redis {} compatible), pid={}, just started",
        ferrokv::VERSION,
        ferrokv::REDIS_VERSION,
        std::process::id()
    );
    ferrokv::notice!("Running mode=standalone, port={}.", srv.config.port.get());
    if let Err(e) = server::run(srv) {
        ferrokv::warning!("{e}");
        std::process::exit(1);
    }
    std::process::exit(0);
}
