//! A replica gives back the memory a big command from its master took
//! in its link's buffer once the command is applied (unit/pendingquerybuf).

mod common;

use std::time::Duration;

use common::{Server, follow, info_num, wait_for, wait_within};

fn used_memory(c: &mut redis::Connection) -> i64 {
    info_num(c, "memory", "used_memory")
}

#[test]
fn a_big_value_from_the_master_leaves_no_big_buffer_on_the_replica() {
    let master = Server::start_with(&["--repl-diskless-sync-delay", "0"]);
    let replica = Server::start();
    let mut m = master.client();
    let mut r = replica.client();
    follow(&mut r, master.port);
    let value = vec![b'x'; 32 << 20];
    let _: () = redis::cmd("SET")
        .arg("key")
        .arg(&value)
        .query(&mut m)
        .unwrap();
    wait_for("the value on the replica", || {
        redis::cmd("STRLEN")
            .arg("key")
            .query::<i64>(&mut r)
            .unwrap()
            == value.len() as i64
    });
    // Within a few seconds (an idle master connection's buffer is trimmed
    // by a timer too), the replica uses about what the master does.
    wait_within(
        "the replica's memory back to the master's",
        Duration::from_secs(10),
        || used_memory(&mut r) <= used_memory(&mut m) + (10 << 20),
    );
}
