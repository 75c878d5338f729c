//! FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT milliseconds]: the
//! coordinated hand-over of the master role (`server::failover`).

use super::{CmdResult, Ctx, Error, Handler};
use crate::resp::Args;
use crate::server::failover::Request;

pub const COMMANDS: &[(&str, Handler)] = &[("failover", failover)];

fn failover(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if args.len() == 2 && args[1].eq_ignore_ascii_case(b"abort") {
        if !crate::server::failover::abort(ctx.srv) {
            return Err(Error::msg("ERR No failover in progress."));
        }
        ctx.out.ok();
        return Ok(());
    }
    let req = parse(args)?;
    crate::server::failover::start(ctx.srv, req).map_err(Error::msg)?;
    ctx.out.ok();
    Ok(())
}

/// Each option at most once (a second one is a syntax error, as ABORT
/// with anything else); the port and timeout are integers, the timeout
/// positive.
fn parse(args: &Args<'_>) -> Result<Request, Error> {
    let not_int = || Error::msg("ERR value is not an integer or out of range");
    let mut req = Request {
        target: None,
        timeout_ms: None,
        force: false,
    };
    let mut j = 1;
    while j < args.len() {
        let a = &args[j];
        if a.eq_ignore_ascii_case(b"timeout") && j + 1 < args.len() && req.timeout_ms.is_none() {
            let ms = crate::util::num::parse_i64(&args[j + 1]).ok_or_else(not_int)?;
            if ms <= 0 {
                return Err(Error::msg("ERR FAILOVER timeout must be greater than 0"));
            }
            req.timeout_ms = Some(ms);
            j += 2;
        } else if a.eq_ignore_ascii_case(b"to") && j + 2 < args.len() && req.target.is_none() {
            let port = crate::util::num::parse_i64(&args[j + 2]).ok_or_else(not_int)?;
            let host = String::from_utf8_lossy(&args[j + 1]).into_owned();
            req.target = Some((host, port));
            j += 3;
        } else if a.eq_ignore_ascii_case(b"force") && !req.force {
            req.force = true;
            j += 1;
        } else {
            return Err(Error::Syntax);
        }
    }
    Ok(req)
}
