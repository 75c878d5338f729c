//! The process title (`proc-title-template`): what `ps` and
//! `/proc/<pid>/cmdline` show, as Redis sets it.
//!
//! Linux shows a process's command line from the memory its arguments were
//! passed in; Redis rewrites that memory (extended over the environment
//! strings that follow it, whose copies move to the heap first). ferrokv
//! does the same: [`init`] (at start-up, while the process has one thread)
//! records the arguments' memory and moves the environment out of the way;
//! [`apply`] writes the expanded template there. Changing `mm->arg_start`
//! with `prctl(PR_SET_MM)` instead would need `CAP_SYS_RESOURCE`.
//!
//! Template variables: `{title}` (the name the process was started with),
//! `{listen-addr}` (the first `bind` address, or `*`, with the port),
//! `{server-mode}` (empty: ferrokv runs standalone), `{port}`,
//! `{tls-port}`, `{unixsocket}`, `{config-file}`. `{{` and `}}` are
//! literal braces. A template that names an unknown variable, leaves one
//! open, or expands to nothing but spaces (with an empty `{title}`) is
//! refused, as Redis refuses it.

use std::ffi::{CStr, c_char, c_int};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::Server;

/// CONFIG SET's reason for a bad template.
pub const INVALID: &str = "template format is invalid or contains unknown variables";

static ARGV: AtomicPtr<*const c_char> = AtomicPtr::new(std::ptr::null_mut());
static ARGC: AtomicUsize = AtomicUsize::new(0);

/// glibc calls `.init_array` functions with the process's arguments (the
/// same hook Rust's std uses on Linux): record where they are.
extern "C" fn capture(argc: c_int, argv: *const *const c_char, _envp: *const *const c_char) {
    ARGC.store(usize::try_from(argc).unwrap_or(0), Ordering::Relaxed);
    ARGV.store(argv.cast_mut(), Ordering::Relaxed);
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
#[unsafe(link_section = ".init_array.00099")]
static CAPTURE: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = capture;

/// The writable title area: its start and length (0: no title can be set).
struct Area {
    start: usize,
    len: usize,
}

static AREA: Mutex<Area> = Mutex::new(Area { start: 0, len: 0 });
/// `argv[0]` as started (`{title}`), read before anything is overwritten.
static TITLE: OnceLock<String> = OnceLock::new();

unsafe extern "C" {
    static mut environ: *mut *mut c_char;
}

/// Records the argument area and moves the environment strings that
/// follow it to the heap, so the title may use their memory too. Call once,
/// early in `main`, before any other thread exists (it replaces pointers
/// in `environ`, which other threads could be reading).
pub fn init() {
    let argv = ARGV.load(Ordering::Relaxed);
    let argc = ARGC.load(Ordering::Relaxed);
    if argv.is_null() || argc == 0 {
        return;
    }
    // SAFETY: `argv` is the argument vector glibc handed to the init
    // functions: `argc` valid pointers to NUL-terminated strings, which
    // live for the whole process. Nothing has written to them yet.
    let args: Vec<*const c_char> = (0..argc).map(|i| unsafe { *argv.add(i) }).collect();
    let Some(&first) = args.first() else { return };
    // SAFETY: as above, `first` points to a NUL-terminated string.
    let _ = TITLE.set(
        unsafe { CStr::from_ptr(first) }
            .to_string_lossy()
            .into_owned(),
    );
    let start = first as usize;
    // The area is contiguous as long as each string begins right after
    // the previous one's NUL: the arguments, then the environment.
    let mut end = start;
    for &a in &args {
        if a as usize != end {
            break;
        }
        // SAFETY: a NUL-terminated argument string (above).
        end = a as usize + unsafe { CStr::from_ptr(a) }.to_bytes().len() + 1;
    }
    // SAFETY: single-threaded start-up (the caller's promise): `environ` is
    // a NULL-terminated array of NUL-terminated strings; every entry that
    // lies in the area is replaced with a leaked heap copy before the area
    // is ever written.
    unsafe {
        let env = environ;
        if !env.is_null() {
            let mut i = 0;
            loop {
                let e = *env.add(i);
                if e.is_null() {
                    break;
                }
                let len = CStr::from_ptr(e).to_bytes().len() + 1;
                if e as usize == end {
                    end += len;
                }
                if (e as usize) >= start && (e as usize) < end {
                    let copy = CStr::from_ptr(e).to_owned().into_raw();
                    *env.add(i) = copy;
                }
                i += 1;
            }
        }
    }
    *AREA.lock() = Area {
        start,
        len: end - start,
    };
}

/// Expands `template`; `None` if it is malformed or names an unknown
/// variable. `lookup` answers a variable's value.
fn expand(template: &str, lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
        } else if let Some(after) = tail.strip_prefix('}') {
            out.push('}');
            rest = after;
        } else {
            let close = tail.find('}')?;
            out.push_str(&lookup(&tail[1..close])?);
            rest = &tail[close + 1..];
        }
    }
    out.push_str(rest);
    Some(out.trim_matches(' ').to_string())
}

fn variables(srv: &Server, title: &str, name: &str) -> Option<String> {
    let c = &srv.config;
    Some(match name {
        "title" => title.to_string(),
        "listen-addr" => {
            let bind = c.bind.get();
            let first = bind.split_whitespace().next().unwrap_or("*").to_string();
            let port = match c.port.get() {
                0 => c.tls_port.get(),
                p => p,
            };
            format!("{first}:{port}")
        }
        "server-mode" => String::new(),
        "port" => c.port.get().to_string(),
        "tls-port" => c.tls_port.get().to_string(),
        "unixsocket" => c.unixsocket.get(),
        "config-file" => srv.config_file.clone().unwrap_or_default(),
        _ => return None,
    })
}

/// Checks a template as CONFIG SET and the config file take it (without a
/// server: every variable but `{title}` stands for a non-empty word).
pub fn validate(template: &str) -> Result<(), String> {
    let known = |name: &str| match name {
        "title" | "server-mode" | "unixsocket" | "config-file" => Some(String::new()),
        "listen-addr" | "port" | "tls-port" => Some("0".to_string()),
        _ => None,
    };
    match expand(template, known) {
        Some(s) if !s.is_empty() => Ok(()),
        _ => Err(INVALID.into()),
    }
}

/// Sets the process title from `proc-title-template` (start-up, CONFIG SET).
pub fn apply(srv: &Server) {
    let title = TITLE.get().map(String::as_str).unwrap_or("ferrokv");
    let template = srv.config.proc_title_template.get();
    let Some(text) = expand(&template, |n| variables(srv, title, n)) else {
        return;
    };
    let area = AREA.lock();
    if area.len < 2 {
        return;
    }
    let n = text.len().min(area.len - 1);
    // SAFETY: [start, start + len) is the argument and environment string
    // memory recorded by `init`: owned by this process for its lifetime,
    // no longer referenced by `environ` (moved by `init`) nor read by
    // anything else (the arguments were parsed before `init`); the lock
    // serializes writers.
    unsafe {
        let dst = area.start as *mut u8;
        std::ptr::copy_nonoverlapping(text.as_ptr(), dst, n);
        std::ptr::write_bytes(dst.add(n), 0, area.len - n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand_as_redis_checks_them() {
        assert!(validate("{title} {listen-addr} {server-mode}").is_ok());
        assert!(validate("{port}").is_ok());
        assert!(validate("{{").is_ok());
        assert!(validate("a}b").is_ok());
        assert!(validate("{{}").is_ok());
        for bad in [
            "{title}",
            "{server-mode}",
            "",
            "   ",
            "{}",
            "{TITLE}",
            "{title",
            "{bad}",
        ] {
            assert_eq!(validate(bad).unwrap_err(), INVALID, "{bad:?}");
        }
        let v = |n: &str| (n == "port").then(|| "7".to_string());
        assert_eq!(expand("x{{y}} {port}}", v).unwrap(), "x{y} 7}");
    }
}
