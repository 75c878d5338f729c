//! The script thread: every command that runs Lua (`cmd::runs_scripts`)
//! runs here as a job, one at a time, so a runaway script occupies this
//! thread and no worker: every connection keeps being read, other clients
//! get BUSY once `busy-reply-threshold` has passed, and SCRIPT KILL,
//! FUNCTION KILL and SHUTDOWN NOSAVE are served from any worker.
//!
//! The connection moves its [`Client`] and reply buffer into the job and
//! awaits them back on a oneshot channel, so no borrowed state crosses
//! threads; the command's arguments are copied (they point into the
//! connection's read buffer). Locks are the job's own (a connection holds
//! none between commands).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::cmd::Command;
use crate::resp::{Args, Parser, Reply};
use crate::server::Server;
use crate::server::client::Client;
use crate::server::stats::ThreadStats;

/// Converting a script's deeply nested reply recurses about 8,000 levels
/// (Lua's C stack limit) before Redis's "reached lua stack limit"; the
/// stack is reserved, not committed, until used.
const STACK: usize = 16 << 20;

/// One command to run on the script thread.
pub struct Job {
    client: Client,
    out: Reply,
    cmd: &'static Command,
    buf: Vec<u8>,
    spans: Vec<(usize, usize)>,
    now_ms: i64,
    /// `maxmemory` state when the command was checked (on its worker).
    oom: bool,
    /// An EVAL run as a debugging session talks to its client through this.
    ldb: Option<super::ldb::Link>,
    done: oneshot::Sender<(Client, Reply)>,
}

/// The handle of the script thread, started with the first job.
#[derive(Default)]
pub struct ScriptThread {
    tx: std::sync::OnceLock<Option<mpsc::Sender<Job>>>,
}

impl ScriptThread {
    fn sender(&self, srv: &'static Server) -> Option<&mpsc::Sender<Job>> {
        self.tx.get_or_init(|| start(srv)).as_ref()
    }
}

fn start(srv: &'static Server) -> Option<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    // INFO sums its counters with the workers'.
    let stats = Arc::new(ThreadStats::new(srv.commands.len()));
    srv.thread_stats.lock().push(stats.clone());
    let spawned = std::thread::Builder::new()
        .name("ferrokv-script".into())
        .stack_size(STACK)
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                serve(srv, &stats, job);
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            crate::warning!("starting the script thread: {e}");
            None
        }
    }
}

fn serve(srv: &'static Server, stats: &ThreadStats, job: Job) {
    let Job {
        mut client,
        mut out,
        cmd,
        buf,
        spans,
        now_ms,
        oom,
        ldb,
        done,
    } = job;
    let args = Parser::args_over(&buf, &spans);
    crate::server::evict::set_oom_at_command_start(oom);
    let reply_start = out.len();
    super::ldb::offer_link(ldb);
    // `run_job` ends the job (script state, locks) even when it unwinds;
    // the client and its buffer are plain data and go back either way.
    let r = catch_unwind(AssertUnwindSafe(|| {
        crate::cmd::run_job(srv, &mut client, &mut out, stats, cmd, &args, now_ms);
    }));
    if r.is_err() {
        crate::warning!("command '{}' panicked on the script thread", cmd.name);
        out.truncate(reply_start);
        out.error(&format!("ERR internal error in '{}' command", cmd.name));
    }
    // Not taken (the command did not start a session): dropped here, which
    // the connection task sees.
    super::ldb::offer_link(None);
    // A connection that went away dropped its receiver: nothing to do.
    let _ = done.send((client, out));
}

/// Runs `cmd` (it runs scripts; `cmd::dispatch` checked it) on the script
/// thread and waits for it without blocking this thread. `client` and
/// `out` are moved there and back: while the job runs they hold a
/// stand-in.
pub async fn run(
    srv: &'static Server,
    client: &mut Client,
    out: &mut Reply,
    cmd: &'static Command,
    args: &Args<'_>,
    now_ms: i64,
) {
    let Some(back) = submit(srv, client, out, (cmd, args, now_ms), None) else {
        return;
    };
    finish(client, out, back.await);
}

/// Hands `cmd` to the script thread (with a debugging session's link);
/// None when it could not (the error is in `out`).
pub fn submit(
    srv: &'static Server,
    client: &mut Client,
    out: &mut Reply,
    (cmd, args, now_ms): (&'static Command, &Args<'_>, i64),
    ldb: Option<super::ldb::Link>,
) -> Option<oneshot::Receiver<(Client, Reply)>> {
    let mut buf = Vec::with_capacity(args.iter().map(<[u8]>::len).sum());
    let mut spans = Vec::with_capacity(args.len());
    for a in args.iter() {
        spans.push((buf.len(), buf.len() + a.len()));
        buf.extend_from_slice(a);
    }
    let Some(tx) = srv.scripting.thread.sender(srv) else {
        out.error("ERR the script thread could not be started");
        return None;
    };
    let stand_in = Client::new(client.info.clone(), client.authenticated);
    let (done, back) = oneshot::channel();
    let job = Job {
        client: std::mem::replace(client, stand_in),
        out: std::mem::replace(out, Reply::new(out.resp3)),
        cmd,
        buf,
        spans,
        now_ms,
        oom: crate::server::evict::oom_at_command_start(),
        ldb,
        done,
    };
    if let Err(mpsc::SendError(job)) = tx.send(job) {
        // The thread is gone (it never exits while the process runs).
        *client = job.client;
        *out = job.out;
        out.error("ERR the script thread is not running");
        return None;
    }
    Some(back)
}

/// Takes back the client and reply buffer a job returned.
pub fn finish(
    client: &mut Client,
    out: &mut Reply,
    back: Result<(Client, Reply), oneshot::error::RecvError>,
) {
    match back {
        Ok((c, o)) => {
            *client = c;
            *out = o;
        }
        // The job was dropped without an answer: only if the thread died.
        Err(_) => {
            client.close_after_reply = true;
            out.error("ERR the script thread is not running");
        }
    }
}
