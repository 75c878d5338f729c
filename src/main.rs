//! The `ferrokv` binary: redis-server's command line.
//!
//! `ferrokv [/path/to/redis.conf] [--name value ...]`

use ferrokv::cmd::CommandTable;
use ferrokv::config::{Config, file};
use ferrokv::server::{self, Server};

#[global_allocator]
static GLOBAL: ferrokv::alloc::Counting<mimalloc::MiMalloc> =
    ferrokv::alloc::Counting(mimalloc::MiMalloc);

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
    ferrokv::persist::child::run_if_asked(&argv);
    // The title's memory is the arguments', read just above; one thread.
    ferrokv::server::title::init();
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
    let fail = |e: file::Fatal| -> ! {
        match e {
            file::Fatal::Directive { .. } => eprintln!("{}", e.render()),
            file::Fatal::Message(m) => ferrokv::warning!("{m}"),
        }
        std::process::exit(1);
    };
    let (config_file, directives) = file::collect(&argv).unwrap_or_else(|e| fail(e));
    let config = Config::default();
    let mut commands = CommandTable::build(&ferrokv::cmd::handlers());
    let warnings = file::apply(&config, &mut commands, &directives, config_file.as_deref())
        .unwrap_or_else(|e| fail(e));
    ferrokv::log::set_level(config.loglevel.get());
    ferrokv::crash::install();
    let logfile = config.logfile.get();
    if !logfile.is_empty()
        && let Err(e) = ferrokv::log::set_file(&logfile)
    {
        eprintln!("Can't open the log file: {e}");
        std::process::exit(1);
    }
    for w in &warnings {
        ferrokv::warning!("{w}");
    }
    adjust_open_files_limit(&config);
    // As Redis: no transparent huge pages for this process (mimalloc
    // madvises its arenas for them, which inflates RSS per key by ~2%).
    if config.disable_thp.get() {
        // SAFETY: prctl with these arguments only sets a process flag.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
    ferrokv::store::Keyspace::seed_hash(ferrokv::util::rand::seed());
    let srv: &'static Server = Box::leak(Box::new(Server::with_commands(
        config,
        config_file,
        commands,
    )));
    if let Err(e) = ferrokv::acl::file::load_at_startup(&srv.acl, &srv.config) {
        ferrokv::warning!("{e}");
        std::process::exit(1);
    }
    ferrokv::notice!("oO0OoO0OoO0Oo ferrokv is starting oO0OoO0OoO0Oo");
    ferrokv::notice!(
        "ferrokv version={} (Redis {} compatible), pid={}, just started",
        ferrokv::VERSION,
        ferrokv::REDIS_VERSION,
        std::process::id()
    );
    // The banner, then the dataset (RDB or AOF), come in `server::run`,
    // once the listeners are bound.
    if let Err(e) = server::run(srv) {
        ferrokv::warning!("{e}");
        std::process::exit(1);
    }
    std::process::exit(0);
}
