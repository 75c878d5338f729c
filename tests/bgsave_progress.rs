//! INFO persistence follows a running BGSAVE in Redis's fork fields: keys
//! in the image and written so far (`current_save_keys_*`,
//! `current_fork_perc`), and what writers had to copy before changing an
//! entry of the image (`current_cow_size`, then `rdb_last_cow_size`).

mod common;

use common::{Server, info_num, wait_for};

fn info(c: &mut redis::Connection) -> String {
    redis::cmd("INFO").arg("persistence").query(c).unwrap()
}

fn num(info: &str, name: &str) -> f64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {info}"))
        .trim()
        .parse()
        .unwrap()
}

/// 500 bytes that do not compress (LZF would shrink a repeated byte).
fn noise(seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..500)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn a_running_bgsave_reports_its_progress_and_what_writers_copied() {
    let srv = Server::start();
    let mut c = srv.client();
    let keys = 4000;
    let mut pipe = redis::pipe();
    for k in 0..keys {
        pipe.cmd("SET")
            .arg(format!("key{k}"))
            .arg(noise(k))
            .ignore();
    }
    pipe.query::<()>(&mut c).unwrap();
    let idle = info(&mut c);
    assert_eq!(num(&idle, "current_save_keys_total"), 0.0, "{idle}");
    assert_eq!(num(&idle, "current_cow_size"), 0.0, "{idle}");
    // About two seconds of walk: long enough to write into it.
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("rdb-key-save-delay")
        .arg(500)
        .query::<()>(&mut c)
        .unwrap();
    let _: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    let during = info(&mut c);
    assert_eq!(num(&during, "rdb_bgsave_in_progress"), 1.0, "{during}");
    assert_eq!(
        num(&during, "current_save_keys_total"),
        keys as f64,
        "{during}"
    );
    // Writers change every key: those the walk has not reached yet are
    // copied first (overwritten ones whole, changed ones encoded).
    for k in 0..keys {
        if k % 2 == 0 {
            let _: () = redis::cmd("SET")
                .arg(format!("key{k}"))
                .arg("new")
                .query(&mut c)
                .unwrap();
        } else {
            let _: i64 = redis::cmd("SETRANGE")
                .arg(format!("key{k}"))
                .arg(0)
                .arg("new")
                .query(&mut c)
                .unwrap();
        }
    }
    let after = info(&mut c);
    if num(&after, "rdb_bgsave_in_progress") == 1.0 {
        let processed = num(&after, "current_save_keys_processed");
        assert!(processed > 0.0 && processed <= keys as f64, "{after}");
        let perc = num(&after, "current_fork_perc");
        assert!(
            (perc - processed * 100.0 / keys as f64).abs() < 0.01,
            "{after}"
        );
        assert!(num(&after, "current_cow_size") >= 10_000.0, "{after}");
        assert_eq!(
            num(&after, "current_cow_peak"),
            num(&after, "current_cow_size")
        );
    }
    wait_for("the save's end", || {
        info_num(&mut c, "persistence", "rdb_bgsave_in_progress") == 0
    });
    let done = info(&mut c);
    assert!(done.contains("rdb_last_bgsave_status:ok"), "{done}");
    assert_eq!(num(&done, "current_save_keys_total"), 0.0, "{done}");
    assert_eq!(num(&done, "current_cow_size"), 0.0, "{done}");
    // Most keys were written before the walk reached them.
    assert!(num(&done, "rdb_last_cow_size") >= 10_000.0, "{done}");
}
