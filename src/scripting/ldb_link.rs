//! The connection's side of a debugging session (`super::ldb`): the EVAL
//! goes to the script thread with a [`Link`]; while it runs, this task
//! writes each batch of log lines the debugger sends to the socket, then
//! reads the client's next debugger command and hands it over. A client
//! that goes away is reported (the script then runs on to its end), and the
//! job ending (a kill, a shutdown) ends the wait for input.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ldb::{Input, Link};
use super::ldb_fmt::{Parsed, parse_command};
use crate::cmd::Command;
use crate::resp::{Args, Reply};
use crate::server::client::Client;
use crate::server::conn::Stream;
use crate::server::stats::ThreadStats;

/// More than the largest command the debugger accepts (1,024 arguments of
/// 1 KiB each, with their headers) could take.
const MAX_BUFFER: usize = 2 << 20;

/// Runs an EVAL as a debugging session on this connection; `pending`: the
/// bytes the client sent after the EVAL (debugger commands already).
/// The reply buffer holds nothing unsent when called.
#[allow(clippy::too_many_arguments)]
pub async fn run<S: Stream>(
    srv: &'static crate::server::Server,
    sock: &mut S,
    client: &mut Client,
    out: &mut Reply,
    stats: &ThreadStats,
    cmd: &'static Command,
    args: &Args<'_>,
    (now_ms, pending): (i64, &[u8]),
) {
    let (logs_tx, mut logs) = tokio::sync::mpsc::unbounded_channel();
    let (input, input_rx) = std::sync::mpsc::channel();
    let link = Link {
        logs: logs_tx,
        input: input_rx,
    };
    let Some(mut back) = super::thread::submit(srv, client, out, (cmd, args, now_ms), Some(link))
    else {
        return;
    };
    let mut rbuf = BytesMut::from(pending);
    let mut gone = false;
    let done = 'session: loop {
        let batch = tokio::select! {
            r = &mut back => break 'session r,
            b = logs.recv(), if !gone => b,
        };
        let Some(batch) = batch else {
            // The session ended; its job is about to answer.
            gone = true;
            continue;
        };
        let mut wrote = sock.write_all(&batch).await;
        if S::LAYERED && wrote.is_ok() {
            wrote = sock.flush().await;
        }
        stats.net_output_bytes.add(batch.len() as u64);
        if wrote.is_err() {
            gone = true;
            let _ = input.send(Input::Gone);
            continue;
        }
        // One command; what follows it in the buffer is dropped, as Redis
        // drops it.
        let next = loop {
            match parse_command(&rbuf) {
                Parsed::Command(argv) => {
                    rbuf.clear();
                    break Input::Command(argv);
                }
                Parsed::Error => {
                    rbuf.clear();
                    break Input::ProtocolError;
                }
                Parsed::Incomplete if rbuf.len() > MAX_BUFFER => break Input::ProtocolError,
                Parsed::Incomplete => {}
            }
            if client
                .info
                .killed
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                break Input::Gone;
            }
            let read = tokio::select! {
                r = &mut back => break 'session r,
                r = sock.read_buf(&mut rbuf) => r,
            };
            match read {
                Ok(0) | Err(_) => break Input::Gone,
                Ok(n) => stats.net_input_bytes.add(n as u64),
            }
        };
        gone = matches!(next, Input::Gone);
        let _ = input.send(next);
    };
    super::thread::finish(client, out, done);
}
