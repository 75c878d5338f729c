//! The Lua debugger (LDB): `SCRIPT DEBUG YES|SYNC`, then an EVAL runs
//! as a debugging session, driven by the client one command at a time
//! (`redis-cli --ldb` / `--ldb-sync-mode`), with Redis 7.0.15's replies.
//!
//! The session runs inside the script job, on the script thread, like any
//! EVAL: a line hook stops the script and asks the connection task for the
//! next debugger command through a [`Link`] (`ldb_link.rs` writes each batch
//! of log lines to the socket and reads the answer). A stopped script is a
//! running script to other clients: they wait, then get BUSY. The wait for
//! input looks at SCRIPT KILL and shutdown every 100 ms, and a client that
//! goes away lets the script run on to its end without stopping, so a
//! parked job always has a way out.
//!
//! SYNC keeps the data changes, as in Redis. YES promises what Redis's
//! forked session gives: the dataset is as before once the session ends.
//! Here the session is not forked (a fork of this multi-threaded process
//! could inherit locks other threads hold); instead the keys each write
//! command touches are saved first, and put back when the session ends
//! (`ldb_undo.rs`), and the session's writes reach neither the AOF nor
//! replicas. The cost of that: other clients wait for a YES session too.
//!
//! Outside a session all this costs one `bool` test per `redis.call`.

use std::cell::RefCell;
use std::ffi::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use mlua::ffi::{self, lua_State};

use super::convert::push_error_table;
use super::ldb_fmt;
use crate::server::Server;

/// A client's `SCRIPT DEBUG` mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Off,
    /// `SCRIPT DEBUG YES`: the session's changes are rolled back.
    Yes,
    /// `SCRIPT DEBUG SYNC`: they are kept.
    Sync,
}

/// What the connection task hands the debugger.
pub enum Input {
    Command(Vec<Vec<u8>>),
    /// The client sent something that is not a debugger command.
    ProtocolError,
    /// The client went away.
    Gone,
}

/// The two ways between a session (script thread) and its connection
/// task: log batches out (each a complete RESP array), commands back.
pub struct Link {
    pub logs: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    pub input: Receiver<Input>,
}

const MAX_BREAKPOINTS: usize = 64;
const MIN_MAXLEN: i64 = 60;
const MAX_LOGS: usize = 16 << 20;
const UNKNOWN: &str = "<error> Unknown Redis Lua debugger command or wrong number of arguments.";
pub const ABORTED: &[u8] = b"ERR script aborted for user request";
const PROTOCOL_ERROR: &[u8] = b"ERR protocol error";
/// How often a session waiting for input looks at SCRIPT KILL/shutdown.
const POLL: Duration = Duration::from_millis(100);

const HELP: &[&str] = &[
    "Redis Lua debugger help:",
    "[h]elp               Show this help.",
    "[s]tep               Run current line and stop again.",
    "[n]ext               Alias for step.",
    "[c]ontinue           Run till next breakpoint.",
    "[l]ist               List source code around current line.",
    "[l]ist [line]        List source code around [line].",
    "                     line = 0 means: current position.",
    "[l]ist [line] [ctx]  In this form [ctx] specifies how many lines",
    "                     to show before/after [line].",
    "[w]hole              List all source code. Alias for 'list 1 1000000'.",
    "[p]rint              Show all the local variables.",
    "[p]rint <var>        Show the value of the specified variable.",
    "                     Can also show global vars KEYS and ARGV.",
    "[b]reak              Show all breakpoints.",
    "[b]reak <line>       Add a breakpoint to the specified line.",
    "[b]reak -<line>      Remove breakpoint from the specified line.",
    "[b]reak 0            Remove all breakpoints.",
    "[t]race              Show a backtrace.",
    "[e]val <code>        Execute some Lua code (in a different callframe).",
    "[r]edis <cmd>        Execute a Redis command.",
    "[m]axlen [len]       Trim logged Redis replies and Lua var dumps to len.",
    "                     Specifying zero as <len> means unlimited.",
    "[a]bort              Stop the execution of the script. In sync",
    "                     mode dataset changes will be retained.",
    "",
    "Debugger functions you can call from Lua scripts:",
    "redis.debug()        Produce logs in the debugger console.",
    "redis.breakpoint()   Stop execution like if there was a breakpoint in the",
    "                     next line of code.",
];

/// One debugging session's state.
pub struct Session {
    srv: &'static Server,
    link: Link,
    pub mode: Mode,
    lines: Vec<Vec<u8>>,
    /// Breakpoint lines, in the order set. Removal shifts bytes, not
    /// entries, as Redis 7.0's does (see [`Session::remove_breakpoint`]).
    bp: [i32; MAX_BREAKPOINTS],
    bpcount: usize,
    /// Stop at the next line; also what makes `redis.call` log itself.
    pub(super) step: bool,
    /// `redis.breakpoint()` was called: stop at the next line.
    luabp: bool,
    /// Trim replies and values to this many bytes (0: never).
    maxlen: i64,
    maxlen_hint_sent: bool,
    logs: Vec<Vec<u8>>,
    /// The bytes in `logs`: past [`MAX_LOGS`], later lines are dropped (a
    /// script that calls `redis.debug` in a long loop between two stops).
    log_bytes: usize,
    current_line: i32,
    /// The client went away: the script runs on without stopping.
    gone: bool,
    /// When the script last resumed: one running longer than
    /// `busy-reply-threshold` without stopping is stopped.
    resumed: Instant,
    /// YES: the keys to put back.
    pub undo: super::ldb_undo::Undo,
}

thread_local! {
    /// The link of the job about to run on this thread (`thread::serve`).
    static LINK: RefCell<Option<Link>> = const { RefCell::new(None) };
    /// The session of the script running on this thread.
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

/// Hands the next job on this thread its link (or none).
pub fn offer_link(link: Option<Link>) {
    LINK.with(|l| *l.borrow_mut() = link);
}

/// The link offered to the running job, if any.
pub fn take_link() -> Option<Link> {
    LINK.with(|l| l.borrow_mut().take())
}

/// Runs `f` on this thread's session, if one is active and not borrowed.
pub fn with_session<R>(f: impl FnOnce(&mut Session) -> R) -> Option<R> {
    SESSION.with(|s| s.try_borrow_mut().ok()?.as_mut().map(f))
}

/// Ends the session when dropped, however the run ended.
pub struct Active(());

impl Drop for Active {
    fn drop(&mut self) {
        SESSION.with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                *s = None;
            }
        });
    }
}

/// Starts a session for a script whose source is `body`.
pub fn begin(srv: &'static Server, link: Link, mode: Mode, body: &[u8]) -> Active {
    // Line breaks at the end do not make lines (`return 1\r\n` is one).
    let end = body
        .iter()
        .rposition(|&b| b != b'\r' && b != b'\n')
        .map_or(0, |i| i + 1);
    let lines: Vec<Vec<u8>> = body[..end]
        .split(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let session = Session {
        srv,
        link,
        mode,
        lines,
        bp: [0; MAX_BREAKPOINTS],
        bpcount: 0,
        step: true,
        luabp: false,
        maxlen: 256,
        maxlen_hint_sent: false,
        logs: Vec::new(),
        log_bytes: 0,
        current_line: -1,
        gone: false,
        resumed: Instant::now(),
        undo: Default::default(),
    };
    SESSION.with(|s| *s.borrow_mut() = Some(session));
    Active(())
}

/// The session's last frame: what is left to log, then `<endsession>`.
pub fn end_frame() -> Vec<u8> {
    let mut logs = with_session(Session::take_logs).unwrap_or_default();
    logs.push(b"<endsession>".to_vec());
    encode(&logs)
}

/// Log lines as the multi-bulk of status replies the client reads.
fn encode(logs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", logs.len()).into_bytes();
    for line in logs {
        out.push(b'+');
        // A status line cannot hold a line break.
        out.extend(line.iter().map(|&b| match b {
            b'\r' | b'\n' => b' ',
            b => b,
        }));
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// C's `atoi`: leading blanks, a sign, digits up to the first other byte.
fn atoi(s: &[u8]) -> i64 {
    let s = s.trim_ascii_start();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for &c in digits.iter().take_while(|c| c.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    let n = if neg { -n } else { n };
    n.clamp(i64::from(i32::MIN), i64::from(i32::MAX))
}

impl Session {
    pub(super) fn log(&mut self, line: impl Into<Vec<u8>>) {
        let line = line.into();
        if self.log_bytes + line.len() <= MAX_LOGS {
            self.log_bytes += line.len();
            self.logs.push(line);
        }
    }

    fn take_logs(&mut self) -> Vec<Vec<u8>> {
        self.log_bytes = 0;
        std::mem::take(&mut self.logs)
    }

    /// Logs `entry` cut to `maxlen` bytes, with a hint the first time.
    pub(super) fn log_trimmed(&mut self, mut entry: Vec<u8>) {
        if self.maxlen > 0 && entry.len() as i64 > self.maxlen {
            entry.truncate(self.maxlen as usize);
            entry.extend_from_slice(b" ...");
            self.log(entry);
            if !self.maxlen_hint_sent {
                self.maxlen_hint_sent = true;
                self.log("<hint> The above reply was trimmed. Use 'maxlen 0' to disable trimming.");
            }
        } else {
            self.log(entry);
        }
    }

    fn is_breakpoint(&self, line: i32) -> bool {
        self.bp[..self.bpcount].contains(&line)
    }

    pub(super) fn list(&mut self, around: i32, context: i32) {
        let n = self.lines.len() as i64;
        let (from, to) = (
            i64::from(around) - i64::from(context),
            i64::from(around) + i64::from(context),
        );
        for line in from.max(1)..=to.min(n) {
            let line = line as i32;
            let mut entry = Vec::new();
            let (current, bp) = (line == self.current_line, self.is_breakpoint(line));
            ldb_fmt::source_line(
                &mut entry,
                line,
                current,
                bp,
                &self.lines[line as usize - 1],
            );
            self.log(entry);
        }
    }

    fn add_breakpoint(&mut self, line: i64) {
        if self.bpcount == MAX_BREAKPOINTS {
            self.log("Too many breakpoints set.");
        } else if line > self.lines.len() as i64 || self.is_breakpoint(line as i32) {
            self.log("Wrong line number.");
        } else {
            self.bp[self.bpcount] = line as i32;
            self.bpcount += 1;
            self.list(line as i32, 1);
        }
    }

    /// Redis 7.0.15 closes the gap a removed breakpoint leaves by moving
    /// as many *bytes* as there were entries from it on, not entries: after
    /// `b 2 3 4` and `b -2` the list reads 3, 3. Kept for identical output.
    fn remove_breakpoint(&mut self, line: i32) {
        let Some(i) = self.bp[..self.bpcount].iter().position(|&b| b == line) else {
            self.log("No breakpoint in the specified line.");
            return;
        };
        let mut bytes = [0u8; MAX_BREAKPOINTS * 4];
        for (chunk, bp) in bytes.chunks_exact_mut(4).zip(self.bp) {
            chunk.copy_from_slice(&bp.to_le_bytes());
        }
        let from = (i + 1) * 4;
        let len = (self.bpcount - i).min(bytes.len() - from);
        bytes.copy_within(from..from + len, i * 4);
        for (bp, chunk) in self.bp.iter_mut().zip(bytes.chunks_exact(4)) {
            *bp = i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        self.bpcount -= 1;
        self.log("Breakpoint removed.");
    }

    fn breakpoints(&mut self, argv: &[Vec<u8>]) {
        if argv.len() == 1 {
            if self.bpcount == 0 {
                self.log("No breakpoints set. Use 'b <line>' to add one.");
                return;
            }
            self.log(format!("{} breakpoints set:", self.bpcount));
            for i in 0..self.bpcount {
                let line = self.bp[i];
                let mut entry = Vec::new();
                let code = self.source(line).to_vec();
                ldb_fmt::source_line(&mut entry, line, line == self.current_line, true, &code);
                self.log(entry);
            }
            return;
        }
        for arg in &argv[1..] {
            match crate::util::num::parse_i64(arg) {
                Some(0) => {
                    self.bpcount = 0;
                    self.log("All breakpoints removed.");
                }
                Some(n) if n > 0 => self.add_breakpoint(n),
                Some(n) => self.remove_breakpoint(n.unsigned_abs().min(i32::MAX as u64) as i32),
                None => {
                    let mut entry = b"Invalid argument:'".to_vec();
                    entry.extend_from_slice(arg);
                    entry.push(b'\'');
                    self.log(entry);
                }
            }
        }
    }

    fn source(&self, line: i32) -> &[u8] {
        usize::try_from(line - 1)
            .ok()
            .and_then(|i| self.lines.get(i))
            .map_or(b"<out of range source code line>", Vec::as_slice)
    }

    fn maxlen(&mut self, argv: &[Vec<u8>]) {
        if argv.len() >= 2 {
            let n = atoi(&argv[1]);
            self.maxlen_hint_sent = true;
            self.maxlen = if n != 0 && n <= MIN_MAXLEN {
                MIN_MAXLEN
            } else {
                n
            };
        }
        if self.maxlen == 0 {
            self.log("<value> replies are unlimited.");
        } else {
            self.log(format!(
                "<value> replies are truncated at {} bytes.",
                self.maxlen
            ));
        }
    }

    /// Sends the logs and waits for the client's next command.
    fn exchange(&mut self) -> Waited {
        let batch = encode(&self.take_logs());
        if self.link.logs.send(batch).is_err() {
            return Waited::Input(Input::Gone);
        }
        // Waiting for a person is not a stuck thread.
        let _idle = crate::watchdog::idle();
        loop {
            match self.link.input.recv_timeout(POLL) {
                Ok(input) => return Waited::Input(input),
                Err(RecvTimeoutError::Disconnected) => return Waited::Input(Input::Gone),
                Err(RecvTimeoutError::Timeout) => {
                    if self.srv.scripting.kill_requested() || self.srv.shutting_down() {
                        return Waited::Killed;
                    }
                }
            }
        }
    }

    fn client_gone(&mut self) {
        self.gone = true;
        self.step = false;
        self.luabp = false;
        self.bpcount = 0;
        self.take_logs();
    }
}

enum Waited {
    Input(Input),
    Killed,
}

/// What the hook does once the debugger is done with a stop.
enum Action {
    Go,
    Raise(&'static [u8]),
}

/// Installs the debugger's hook on `l` (every line, and every 100,000
/// instructions for SCRIPT KILL and the infinite-loop stop); the hook `l`
/// had is put back when the guard drops.
///
/// # Safety
/// `l` is the live Lua thread the script runs on.
pub unsafe fn arm(l: *mut lua_State) -> Armed {
    // SAFETY: `l` is live (the caller's contract).
    unsafe {
        let armed = Armed {
            l,
            hook: ffi::lua_gethook(l),
            mask: ffi::lua_gethookmask(l),
            count: ffi::lua_gethookcount(l),
        };
        ffi::lua_sethook(
            l,
            Some(hook),
            ffi::LUA_MASKLINE | ffi::LUA_MASKCOUNT,
            100_000,
        );
        armed
    }
}

/// Puts back the hook [`arm`] replaced.
pub struct Armed {
    l: *mut lua_State,
    hook: Option<ffi::lua_Hook>,
    mask: c_int,
    count: c_int,
}

impl Drop for Armed {
    fn drop(&mut self) {
        // SAFETY: the thread the script ran on, which the VM keeps alive.
        unsafe { ffi::lua_sethook(self.l, self.hook, self.mask, self.count) };
    }
}

unsafe extern "C-unwind" fn hook(l: *mut lua_State, ar: *mut ffi::lua_Debug) {
    // SAFETY: Lua calls a hook with its own state and a valid record.
    // A panic must not unwind through Lua's C frames: it becomes an error.
    let action = catch_unwind(AssertUnwindSafe(|| unsafe { on_event(l, ar) }))
        .unwrap_or(Action::Raise(b"ERR internal error in the Lua debugger"));
    if let Action::Raise(msg) = action {
        // SAFETY: nothing with a destructor is alive in this frame.
        unsafe {
            push_error_table(l, msg);
            ffi::lua_error(l);
        }
    }
}

unsafe fn on_event(l: *mut lua_State, ar: *mut ffi::lua_Debug) -> Action {
    let Some(srv) = with_session(|s| s.srv) else {
        return Action::Go;
    };
    if srv.scripting.kill_requested() || srv.shutting_down() {
        return Action::Raise(super::vm::KILLED_MSG.as_bytes());
    }
    // SAFETY: `ar` is the hook's record (the caller's contract).
    let event = unsafe { (*ar).event };
    let timeout = event == ffi::LUA_HOOKCOUNT;
    if timeout {
        let limit = match srv.config.busy_reply_threshold.get() {
            0 => 5000,
            ms => ms,
        };
        let due = with_session(|s| {
            !s.gone && s.resumed.elapsed() >= Duration::from_millis(limit.max(0) as u64)
        });
        if due != Some(true) {
            return Action::Go;
        }
    } else if event != ffi::LUA_HOOKLINE {
        return Action::Go;
    }
    // SAFETY: a hook may ask for its own record's details.
    let line = unsafe {
        ffi::lua_getinfo(l, c"Sl".as_ptr(), ar);
        if std::ffi::CStr::from_ptr((*ar).source) != c"@user_script" {
            return Action::Go;
        }
        (*ar).currentline
    };
    let stop = with_session(|s| {
        s.current_line = line;
        let bp = s.is_breakpoint(line) || s.luabp;
        if s.gone || !(s.step || bp || timeout) {
            return false;
        }
        let reason = if bp {
            if s.luabp {
                "redis.breakpoint() called"
            } else {
                "break point"
            }
        } else if timeout {
            "timeout reached, infinite loop?"
        } else {
            "step over"
        };
        s.step = false;
        s.luabp = false;
        s.log(format!("* Stopped at {line}, stop reason = {reason}"));
        s.list(line, 0);
        true
    });
    if stop != Some(true) {
        return Action::Go;
    }
    // SAFETY: as this function's.
    let action = unsafe { repl(l, ar) };
    with_session(|s| s.resumed = Instant::now());
    action
}

/// Reads and runs debugger commands until one resumes the script.
unsafe fn repl(l: *mut lua_State, ar: *mut ffi::lua_Debug) -> Action {
    loop {
        let waited = with_session(Session::exchange).unwrap_or(Waited::Input(Input::Gone));
        let argv = match waited {
            Waited::Killed => return Action::Raise(super::vm::KILLED_MSG.as_bytes()),
            Waited::Input(Input::Gone) => {
                with_session(Session::client_gone);
                return Action::Go;
            }
            Waited::Input(Input::ProtocolError) => return Action::Raise(PROTOCOL_ERROR),
            Waited::Input(Input::Command(argv)) => argv,
        };
        // SAFETY: as this function's.
        if let Some(action) = unsafe { command(l, ar, &argv) } {
            return action;
        }
    }
}

/// Runs one debugger command; Some(action) when it resumes or ends the
/// script.
unsafe fn command(l: *mut lua_State, ar: *mut ffi::lua_Debug, argv: &[Vec<u8>]) -> Option<Action> {
    // Names compare as C strings do: up to a NUL byte.
    let name = argv[0].split(|&b| b == 0).next().unwrap_or_default();
    let name = name.to_ascii_lowercase();
    let session = |f: &mut dyn FnMut(&mut Session)| {
        with_session(|s| f(s));
    };
    match name.as_slice() {
        b"h" | b"help" => session(&mut |s| HELP.iter().for_each(|h| s.log(*h))),
        b"s" | b"step" | b"n" | b"next" => {
            session(&mut |s| s.step = true);
            return Some(Action::Go);
        }
        b"c" | b"continue" => return Some(Action::Go),
        b"t" | b"trace" => {
            // SAFETY: `l` is the hooked thread.
            unsafe { super::ldb_cmds::trace(l) }
        }
        b"m" | b"maxlen" => session(&mut |s| s.maxlen(argv)),
        b"b" | b"break" => session(&mut |s| s.breakpoints(argv)),
        b"e" | b"eval" => {
            // SAFETY: as above.
            unsafe { super::ldb_cmds::eval(l, argv) }
        }
        b"a" | b"abort" => return Some(Action::Raise(ABORTED)),
        b"r" | b"redis" if argv.len() > 1 => {
            // SAFETY: as above.
            unsafe { super::ldb_cmds::redis(l, argv) }
        }
        b"p" | b"print" => {
            // SAFETY: `ar` is the stopped function's record.
            unsafe { super::ldb_cmds::print(l, ar, (argv.len() == 2).then(|| argv[1].as_slice())) }
        }
        b"l" | b"list" => session(&mut |s| {
            let mut around = s.current_line;
            if let Some(n) = argv.get(1).map(|a| atoi(a)).filter(|&n| n > 0) {
                around = n as i32;
            }
            let context = argv.get(2).map_or(5, |a| atoi(a) as i32);
            s.list(around, context);
        }),
        b"w" | b"whole" => session(&mut |s| s.list(1, 1_000_000)),
        _ => session(&mut |s| s.log(UNKNOWN)),
    }
    None
}

/// Whether `redis.call` should log now (stepping, client still there).
#[inline]
fn logging() -> bool {
    with_session(|s| s.step && !s.gone).unwrap_or(false)
}

/// `<redis> cmd args...` before a `redis.call` runs (the first ten
/// arguments, then how many more, counted as Redis counts them).
pub fn log_call(argv: &crate::resp::Args<'_>) {
    if !logging() {
        return;
    }
    let mut entry = b"<redis>".to_vec();
    for (i, a) in argv.iter().enumerate() {
        if i == 10 {
            entry.extend_from_slice(format!(" ... ({} more)", argv.len() - i - 1).as_bytes());
            break;
        }
        entry.push(b' ');
        entry.extend_from_slice(a);
    }
    with_session(|s| s.log(entry));
}

/// `<error> ...` for a call the script may not make.
pub fn log_refusal(msg: &[u8]) {
    if !logging() {
        return;
    }
    let mut entry = b"<error> ".to_vec();
    entry.extend_from_slice(msg.strip_prefix(b"ERR ").unwrap_or(msg));
    with_session(|s| s.log(entry));
}

/// `<reply> ...` (after `<error> ...` for an error reply) once a call ran.
pub fn log_reply(buf: &[u8]) {
    if !logging() {
        return;
    }
    with_session(|s| {
        if buf.first() == Some(&b'-') {
            let end = buf
                .windows(2)
                .position(|w| w == b"\r\n")
                .unwrap_or(buf.len());
            let mut entry = b"<error> ".to_vec();
            entry.extend_from_slice(&buf[..end]);
            s.log(entry);
        }
        let mut entry = b"<reply> ".to_vec();
        entry.extend_from_slice(&ldb_fmt::reply(buf));
        s.log_trimmed(entry);
    });
}

/// `redis.debug(...)`: logs its arguments during a session.
///
/// # Safety
/// Only Lua calls it, as a C function.
pub unsafe extern "C-unwind" fn redis_debug(l: *mut lua_State) -> c_int {
    if with_session(|s| s.gone) != Some(false) {
        return 0;
    }
    // SAFETY: the arguments 1..=n are this C function's; level 1 is the
    // Lua function that called it.
    unsafe {
        let n = ffi::lua_gettop(l);
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        let mut line = -1;
        if ffi::lua_getstack(l, 1, &mut ar) != 0 {
            ffi::lua_getinfo(l, c"l".as_ptr(), &mut ar);
            line = ar.currentline;
        }
        let mut entry = format!("<debug> line {line}: ").into_bytes();
        for i in 1..=n {
            if i > 1 {
                entry.extend_from_slice(b", ");
            }
            ldb_fmt::lua_value(l, i, &mut entry);
        }
        with_session(|s| s.log(entry));
    }
    0
}

/// `redis.breakpoint()`: stop at the next line (true during a session).
///
/// # Safety
/// Only Lua calls it, as a C function.
pub unsafe extern "C-unwind" fn redis_breakpoint(l: *mut lua_State) -> c_int {
    let on = with_session(|s| {
        if !s.gone {
            s.luabp = true;
        }
        !s.gone
    })
    .unwrap_or(false);
    // SAFETY: a C function may push its one result.
    unsafe { ffi::lua_pushboolean(l, c_int::from(on)) };
    1
}
