//! The replay test's workload: one client's random mix of writes of every
//! family (see tests/replay_digest.rs).

use parking_lot::Mutex;

use super::DBS;

/// xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// One client's state: the database it selected and stream ids it saw.
pub struct Client {
    pub rng: Rng,
    pub db: usize,
    pub ids: Vec<(String, String)>,
    pub blmove: bool,
    /// How many list keys per database (fewer: more contention).
    pub lists: u64,
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

impl Client {
    fn key(&mut self, fam: &str) -> String {
        let n = match fam {
            "f" => 300,
            "x" => 5,
            "t" => 6,
            "l" => self.lists,
            _ => 8,
        };
        format!("{fam}:{}", self.rng.below(n))
    }

    /// Any key of the non-filler families.
    fn any_key(&mut self) -> String {
        let fam = self.rng.pick(&["s", "l", "h", "S", "z", "x", "t"]);
        self.key(fam)
    }

    fn val(&mut self) -> String {
        match self.rng.below(6) {
            0 => self.rng.below(1000).to_string(),
            1 => format!("-{}", self.rng.below(100)),
            2 => "x".repeat(1 + self.rng.below(80) as usize),
            _ => format!("v{}", self.rng.below(30)),
        }
    }

    fn short_ttl(&mut self) -> String {
        (30 + self.rng.below(250)).to_string()
    }

    fn timeout(&mut self) -> &'static str {
        self.rng.pick(&["0.01", "0.02", "0.05"])
    }

    fn string_op(&mut self) -> Vec<String> {
        let k = self.key("s");
        let t = self.key("t");
        let v = self.val();
        let s = match self.rng.below(21) {
            18 => format!("SETBIT {k} {} {}", self.rng.below(200), self.rng.below(2)),
            19 => format!(
                "BITFIELD {k} OVERFLOW {} INCRBY u8 #{} {} SET i5 {} -3",
                self.rng.pick(&["WRAP", "SAT", "FAIL"]),
                self.rng.below(4),
                self.rng.below(300),
                self.rng.below(40)
            ),
            20 => format!(
                "BITOP {} {k} {} {}",
                self.rng.pick(&["AND", "OR", "XOR"]),
                self.key("s"),
                self.key("s")
            ),
            0 => format!("SET {k} {v}"),
            1 => format!("SET {k} {v} EX 3600"),
            2 => format!("SET {k} {v} KEEPTTL GET"),
            3 => format!("SET {t} {v} PX {}", self.short_ttl()),
            4 => format!("SET {k} {v} NX PX 3600000"),
            5 => format!("INCRBYFLOAT {k} 1.5"),
            6 => format!("INCRBY {k} {}", self.rng.below(100)),
            7 => format!("APPEND {k} {v}"),
            8 => format!("SETRANGE {k} {} {v}", self.rng.below(20)),
            9 => format!("GETDEL {k}"),
            10 => format!("GETEX {k} EX 3600"),
            11 => format!("GETEX {k} PERSIST"),
            12 => format!("GETEX {t} PX {}", self.short_ttl()),
            13 => format!("MSET {k} {v} {} {v}", self.key("s")),
            14 => format!("PSETEX {t} {} {v}", self.short_ttl()),
            15 => format!("SETEX {k} 3600 {v}"),
            16 if self.rng.below(2) == 0 => format!("GETSET {k} {v}"),
            16 => format!("DECR {k}"),
            _ => format!("MSETNX {k} {v} {} {v}", self.key("s")),
        };
        words(&s)
    }

    fn list_op(&mut self) -> Vec<String> {
        let (a, b) = (self.key("l"), self.key("l"));
        let v = self.val();
        let side = |r: &mut Rng| r.pick(&["LEFT", "RIGHT"]);
        let s = match self.rng.below(20) {
            0..=3 => format!("LPUSH {a} {v} {}", self.val()),
            4..=5 => format!("RPUSH {a} {v}"),
            6 => format!("LPOP {a}"),
            7 => format!("RPOP {a} 2"),
            8 => format!("LMPOP 2 {a} {b} {} COUNT 2", side(&mut self.rng)),
            9 => format!(
                "LMOVE {a} {b} {} {}",
                side(&mut self.rng),
                side(&mut self.rng)
            ),
            10 => format!("BLPOP {a} {b} {}", self.timeout()),
            11 => format!("BRPOP {a} {}", self.timeout()),
            12 if self.blmove => {
                let (f, t) = (side(&mut self.rng), side(&mut self.rng));
                format!("BLMOVE {a} {b} {f} {t} {}", self.timeout())
            }
            13 if self.blmove => format!("BRPOPLPUSH {a} {b} {}", self.timeout()),
            14 => format!(
                "BLMPOP {} 2 {a} {b} {} COUNT 2",
                self.timeout(),
                side(&mut self.rng)
            ),
            15 => format!("LINSERT {a} BEFORE {v} {}", self.val()),
            16 => format!("LSET {a} 0 {v}"),
            17 => format!("LREM {a} 0 {v}"),
            18 => format!("LTRIM {a} 0 {}", self.rng.below(10)),
            _ => format!("RPUSHX {a} {v}"),
        };
        words(&s)
    }

    fn hash_op(&mut self) -> Vec<String> {
        let k = self.key("h");
        let f = format!("f{}", self.rng.below(12));
        let v = self.val();
        let s = match self.rng.below(7) {
            0 | 1 => format!("HSET {k} {f} {v} f{} {}", self.rng.below(12), self.val()),
            2 => format!("HDEL {k} {f}"),
            3 => format!("HINCRBY {k} {f} 3"),
            4 => format!("HINCRBYFLOAT {k} {f} 0.25"),
            5 => format!("HSETNX {k} {f} {v}"),
            _ => format!("HSET {k} {f} {}", "y".repeat(70)),
        };
        words(&s)
    }

    fn set_op(&mut self) -> Vec<String> {
        let (a, b, c) = (self.key("S"), self.key("S"), self.key("S"));
        let m = self.val();
        let s = match self.rng.below(10) {
            0..=2 => format!("SADD {a} {m} {} {}", self.val(), self.rng.below(50)),
            3 => format!("SREM {a} {m}"),
            4 => format!("SPOP {a}"),
            5 => format!("SPOP {a} 2"),
            6 => format!("SMOVE {a} {b} {m}"),
            7 => format!("SINTERSTORE {c} {a} {b}"),
            8 => format!("SUNIONSTORE {c} {a} {b}"),
            _ => format!("SDIFFSTORE {c} {a} {b}"),
        };
        words(&s)
    }

    fn zset_op(&mut self) -> Vec<String> {
        let (a, b, c) = (self.key("z"), self.key("z"), self.key("z"));
        let m = format!("m{}", self.rng.below(20));
        let sc = format!("{}.{}", self.rng.below(100), self.rng.below(10));
        let s = match self.rng.below(18) {
            0..=2 => format!(
                "ZADD {a} {sc} {m} {} m{}",
                self.rng.below(9),
                self.rng.below(20)
            ),
            3 => format!("ZADD {a} INCR 0.1 {m}"),
            4 => format!("ZADD {a} GT CH {sc} {m}"),
            5 => format!("ZINCRBY {a} -1.5 {m}"),
            6 => format!("ZREM {a} {m}"),
            7 => format!("ZPOPMIN {a}"),
            8 => format!("ZMPOP 2 {a} {b} MAX COUNT 2"),
            9 => format!("BZPOPMIN {a} {b} {}", self.timeout()),
            10 => format!("BZMPOP {} 1 {a} MIN", self.timeout()),
            11 => format!("ZUNIONSTORE {c} 2 {a} {b} WEIGHTS 1 2"),
            12 => format!("ZINTERSTORE {c} 2 {a} {b} AGGREGATE MAX"),
            13 => format!("ZREMRANGEBYSCORE {a} -inf {sc}"),
            14 => format!("ZREMRANGEBYRANK {a} 0 1"),
            15 => format!("ZDIFFSTORE {c} 2 {a} {b}"),
            16 => format!(
                "ZADD {a} {} {m}",
                self.rng.pick(&["inf", "-inf", "1e308", "-0"])
            ),
            _ => format!("ZRANGESTORE {c} {a} 0 2"),
        };
        words(&s)
    }

    fn stream_op(&mut self) -> Vec<String> {
        let k = self.key("x");
        let g = self.rng.pick(&["g1", "g2"]);
        let c = self.rng.pick(&["alice", "bob"]);
        let id = self
            .ids
            .iter()
            .rev()
            .nth(self.rng.below(8) as usize)
            .filter(|(key, _)| *key == k)
            .map_or_else(|| "0-1".to_string(), |(_, id)| id.clone());
        let s = match self.rng.below(19) {
            0..=3 => format!("XADD {k} MAXLEN ~ 40 * f {} g {}", self.val(), self.val()),
            4 => format!("XTRIM {k} MAXLEN 10"),
            5 => format!("XGROUP CREATE {k} {g} 0 MKSTREAM"),
            6 => format!("XREADGROUP GROUP {g} {c} COUNT 3 STREAMS {k} >"),
            7 => format!("XREADGROUP GROUP {g} {c} COUNT 2 BLOCK 20 STREAMS {k} >"),
            8 => format!("XACK {k} {g} {id}"),
            9 => format!("XCLAIM {k} {g} {c} 0 {id}"),
            10 => format!("XAUTOCLAIM {k} {g} {c} 0 0-0 COUNT 3"),
            11 => format!("XDEL {k} {id}"),
            12 => format!("XGROUP SETID {k} {g} 0"),
            13 => format!("XGROUP DELCONSUMER {k} {g} {c}"),
            14 => format!("XGROUP CREATECONSUMER {k} {g} {c}"),
            15 => format!("XADD {k} NOMKSTREAM * f {}", self.val()),
            16 => format!("XTRIM {k} MINID {id}"),
            _ => format!("XGROUP DESTROY {k} {g}"),
        };
        words(&s)
    }

    fn key_op(&mut self) -> Vec<String> {
        let (a, b) = (self.any_key(), self.any_key());
        let db = (self.db + 1 + self.rng.below(DBS as u64 - 1) as usize) % DBS;
        let at = ferrokv::server::now_ms() + 3_600_000;
        let s = match self.rng.below(16) {
            0 => format!("DEL {a} {b}"),
            1 => format!("UNLINK {a}"),
            2 => format!("RENAME {a} {b}"),
            3 => format!("RENAMENX {a} {b}"),
            4 => format!("COPY {a} {b} REPLACE"),
            5 => format!("COPY {a} {b} DB {db}"),
            6 => format!("MOVE {a} {db}"),
            7 => format!("EXPIRE {a} 3600"),
            8 => format!("PEXPIREAT {a} {at}"),
            9 => format!("PEXPIRE {} {}", self.key("t"), self.short_ttl()),
            10 => format!("PERSIST {a}"),
            11 => format!("EXPIRE {a} 7200 GT"),
            12 if self.rng.below(20) == 0 => format!("SWAPDB {} {db}", self.db),
            13 if self.rng.below(200) == 0 => "FLUSHDB".to_string(),
            14 => format!("EXPIRE {} 0", self.key("t")),
            _ => format!("SELECT {}", self.rng.below(DBS as u64)),
        };
        words(&s)
    }

    fn filler_op(&mut self) -> Vec<String> {
        let k = self.key("f");
        let n = 1000 + self.rng.below(6000) as usize;
        vec!["SET".into(), k, "F".repeat(n)]
    }

    fn eval_op(&mut self) -> Vec<String> {
        const SCRIPTS: [&str; 4] = [
            "redis.call('SET', ARGV[1], ARGV[2]); redis.call('RPUSH', ARGV[3], ARGV[2]); return redis.call('INCR', ARGV[4])",
            "local v = redis.call('SPOP', ARGV[1]); if v then redis.call('SADD', ARGV[2], v) end; redis.call('ZINCRBY', ARGV[3], 1, 'm'); return v",
            "redis.call('EXPIRE', ARGV[1], 3600); redis.call('HINCRBY', ARGV[2], 'f', 1); return redis.call('DEL', ARGV[3])",
            "redis.call('SET', ARGV[1], 'x'); return redis.call('LPUSH', ARGV[1], 'y')",
        ];
        let i = self.rng.below(4) as usize;
        let args = match i {
            0 => [self.key("s"), self.val(), self.key("l"), self.key("s")],
            1 => [self.key("S"), self.key("S"), self.key("z"), String::new()],
            2 => [self.any_key(), self.key("h"), self.any_key(), String::new()],
            _ => [self.key("s"), String::new(), String::new(), String::new()],
        };
        let mut argv = vec!["EVAL".to_string(), SCRIPTS[i].to_string(), "0".to_string()];
        argv.extend(args.into_iter().filter(|a| !a.is_empty()));
        argv
    }

    /// One non-blocking write of any family (for MULTI).
    fn plain_op(&mut self) -> Vec<String> {
        loop {
            let op = match self.rng.below(6) {
                0 => self.string_op(),
                1 => self.list_op(),
                2 => self.hash_op(),
                3 => self.set_op(),
                4 => self.zset_op(),
                _ => self.key_op(),
            };
            let name = op[0].to_ascii_uppercase();
            let blocking = name.starts_with('B') || op.iter().any(|a| a == "BLOCK");
            if !blocking && name != "SWAPDB" && name != "FLUSHDB" {
                return op;
            }
        }
    }

    pub fn run_one(&mut self, con: &mut redis::Connection) {
        let pick = self.rng.below(100);
        if pick < 6 {
            let n = 2 + self.rng.below(3);
            let mut p = redis::pipe();
            p.atomic();
            for _ in 0..n {
                let op = self.plain_op();
                let c = p.cmd(&op[0]);
                for a in &op[1..] {
                    c.arg(a);
                }
            }
            let r: redis::RedisResult<redis::Value> = p.query(con);
            check(r);
            // A SELECT inside the transaction may have moved the client.
            let r: redis::RedisResult<redis::Value> = redis::cmd("SELECT").arg(self.db).query(con);
            check(r);
            return;
        }
        let op = match pick {
            6..=19 => self.string_op(),
            20..=35 => self.list_op(),
            36..=45 => self.hash_op(),
            46..=55 => self.set_op(),
            56..=67 => self.zset_op(),
            68..=77 => self.stream_op(),
            78..=89 => self.key_op(),
            90..=94 => self.eval_op(),
            _ => self.filler_op(),
        };
        let mut c = redis::cmd(&op[0]);
        for a in &op[1..] {
            c.arg(a);
        }
        let r: redis::RedisResult<redis::Value> = c.query(con);
        if op[0] == "SELECT" && r.is_ok() {
            self.db = op[1].parse().unwrap();
        }
        if op[0] == "XADD"
            && let Ok(redis::Value::BulkString(id)) = &r
        {
            self.ids
                .push((op[1].clone(), String::from_utf8_lossy(id).into_owned()));
            if self.ids.len() > 64 {
                self.ids.remove(0);
            }
        }
        check(r);
    }
}

/// Errors from the server (WRONGTYPE, OOM, ...) are expected; a broken
/// connection is not.
fn check(r: redis::RedisResult<redis::Value>) {
    if let Err(e) = r {
        if e.is_io_error() || e.is_connection_dropped() {
            panic!("connection failed: {e}");
        }
        let code = e.code().unwrap_or("other").to_string();
        *ERRORS.lock().entry(code).or_insert(0usize) += 1;
    }
}

/// Error replies by code (reported at the end: an OOM-dominated run
/// would test little).
pub static ERRORS: Mutex<std::collections::BTreeMap<String, usize>> =
    Mutex::new(std::collections::BTreeMap::new());
