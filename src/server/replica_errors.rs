//! A command from the master that fails on this replica (the data
//! diverged: a writable replica's own writes, a command this server does
//! not know): the reply is dropped like every reply to the master, but
//! the failure is logged, as Redis logs it, whatever
//! `propagation-error-behavior` says (ferrokv never panics over it).

use crate::server::Server;
use crate::server::client::Client;

/// Logs the error `reply` (the reply to the master's command `args`, if
/// it is an error) with the command's name (`<unknown>` for a command not
/// in the table).
pub fn check(srv: &'static Server, client: &Client, reply: &[u8], args: &crate::resp::Args<'_>) {
    if reply.first() != Some(&b'-') {
        return;
    }
    let known = crate::cmd::gate::resolve(&srv.commands, args).is_ok();
    let line = reply.split(|&b| b == b'\r').next().unwrap_or(reply);
    // Redis logs `ERR` errors without their code, others with it.
    let text = line.strip_prefix(b"-ERR ").unwrap_or(line);
    let text = &text[..text.len().min(4096)];
    let name = match client
        .info
        .last_cmd
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        id if known && id != usize::MAX => srv.commands.get(id).name,
        _ => "<unknown>",
    };
    crate::warning!(
        "== CRITICAL == This replica is sending an error to its master: '{}' after processing the command '{name}'",
        String::from_utf8_lossy(text)
    );
    // What came before it, as Redis shows it (its last 256 bytes).
    if let Some(tail) = crate::server::repl::backlog_tail(256) {
        crate::warning!("Latest backlog is: '{}'", crate::util::repr::quoted(&tail));
    }
}
