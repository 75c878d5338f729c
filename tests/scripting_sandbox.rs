//! The scripting sandbox (issue 8): no bytecode loading, read-only globals
//! and libraries in both VMs, a string hash that covers every byte, and
//! blocking commands that do not block inside scripts. Replies are
//! compared byte for byte with what redis-server 7.0.15 answers (see also
//! tests/diff/scripting-sandbox.txt).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ferrokv::scripting::sha1_hex;

/// A connection that sends commands and reads back one whole reply as the
/// bytes that came.
struct Conn(BufReader<TcpStream>);

impl Conn {
    fn open(srv: &common::Server) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        Conn(BufReader::new(s))
    }

    fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.0.get_mut().write_all(&common::resp(args)).unwrap();
        let mut out = Vec::new();
        self.read_reply(&mut out);
        out
    }

    fn call_str(&mut self, args: &[&str]) -> String {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        String::from_utf8_lossy(&self.call(&args)).into_owned()
    }

    fn read_reply(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        self.0.read_until(b'\n', out).unwrap();
        let line = out[start..].to_vec();
        assert!(line.ends_with(b"\r\n"), "truncated reply {out:?}");
        let n: i64 = std::str::from_utf8(&line[1..line.len() - 2])
            .unwrap_or("0")
            .parse()
            .unwrap_or(0);
        match line[0] {
            b'$' if n >= 0 => {
                let at = out.len();
                out.resize(at + n as usize + 2, 0);
                self.0.read_exact(&mut out[at..]).unwrap();
            }
            b'*' => {
                for _ in 0..n.max(0) {
                    self.read_reply(out);
                }
            }
            _ => {}
        }
    }
}

/// The error Redis gives a failed EVAL script: its message, the script's
/// SHA and the line.
fn eval_error(msg: &str, body: &[u8], line: u32) -> String {
    format!(
        "-{msg} script: {}, on @user_script:{line}.\r\n",
        sha1_hex(body)
    )
}

fn bytecode(c: &mut Conn) -> Vec<u8> {
    let reply = c.call(&[
        b"EVAL",
        b"return string.dump(function() return 42 end)",
        b"0",
    ]);
    // "$<len>\r\n<dump>\r\n"
    let body_at = reply.iter().position(|&b| b == b'\n').unwrap() + 1;
    let dump = reply[body_at..reply.len() - 2].to_vec();
    assert!(dump.starts_with(b"\x1bLua"), "{dump:?}");
    dump
}

#[test]
fn bytecode_is_never_loaded() {
    let srv = common::Server::start();
    let mut c = Conn::open(&srv);
    let dump = bytecode(&mut c);
    let not_text = "unexpected symbol near 'char(27)'";
    let compile_err =
        format!("-ERR Error compiling script (new function): user_script:1: {not_text}\r\n");
    assert_eq!(
        String::from_utf8_lossy(&c.call(&[b"EVAL", &dump, b"0"])),
        compile_err
    );
    assert_eq!(
        String::from_utf8_lossy(&c.call(&[b"SCRIPT", b"LOAD", &dump])),
        compile_err
    );
    let body = "return loadstring(string.dump(function() return 42 end))()";
    assert_eq!(
        c.call_str(&["EVAL", body, "0"]),
        eval_error(
            "ERR user_script:1: attempt to call a nil value",
            body.as_bytes(),
            1
        )
    );
    let via_loadstring = b"local f, e = loadstring(ARGV[1]) return {tostring(f), e}";
    let reply = c.call(&[b"EVAL", via_loadstring, b"0", &dump]);
    let want = format!("*2\r\n$3\r\nnil\r\n$53\r\n[string \"\x1bLuaQ\"]:1: {not_text}\r\n");
    assert_eq!(String::from_utf8_lossy(&reply), want);
    // A reader function handing the dump over one byte at a time.
    let via_load = b"local s, i = ARGV[1], 0 \
        local f, e = load(function() i = i + 1 if i <= #s then return s:sub(i, i) end end) \
        return {tostring(f), e}";
    let reply = c.call(&[b"EVAL", via_load, b"0", &dump]);
    let want = format!("*2\r\n$3\r\nnil\r\n$43\r\n(load):1: {not_text}\r\n");
    assert_eq!(String::from_utf8_lossy(&reply), want);
    let mut lib = b"#!lua name=bc\n".to_vec();
    lib.extend_from_slice(&dump);
    assert_eq!(
        String::from_utf8_lossy(&c.call(&[b"FUNCTION", b"LOAD", &lib])),
        format!("-ERR Error compiling function: user_function:2: {not_text}\r\n")
    );
    let lib = "#!lua name=bc2\nredis.register_function('bc2', \
        function(k, a) local f, e = loadstring(a[1]) return {tostring(f), e} end)";
    assert_eq!(c.call_str(&["FUNCTION", "LOAD", lib]), "$3\r\nbc2\r\n");
    let reply = c.call(&[b"FCALL", b"bc2", b"0", &dump]);
    let want = format!("*2\r\n$3\r\nnil\r\n$53\r\n[string \"\x1bLuaQ\"]:1: {not_text}\r\n");
    assert_eq!(String::from_utf8_lossy(&reply), want);
    // Source text still loads.
    assert_eq!(
        c.call_str(&["EVAL", "return loadstring('return 6 * 7')()", "0"]),
        ":42\r\n"
    );
}

#[test]
fn globals_libraries_and_metatables_are_read_only() {
    let srv = common::Server::start();
    let mut c = Conn::open(&srv);
    let ro = "Attempt to modify a readonly table";
    // (script, raised from Lua code: the message has a position)
    let cases: &[(&str, bool)] = &[
        ("redis.call = function() return 'x' end return 1", true),
        ("rawset(redis, 'call', function() return 'x' end)", false),
        ("rawset(redis,'x',1)", false),
        ("string.rep = nil", true),
        ("setmetatable(_G, nil)", false),
        ("getmetatable('').__index = 1", true),
        ("rawset(getmetatable(''), '__index', {})", false),
        ("setmetatable(getmetatable(''), {})", false),
        ("x = 1", true),
        ("_G.x = 1", true),
        ("rawset(_G, 'x', 1)", false),
        ("KEYS = 1", true),
        ("getmetatable(_G).__index = nil", true),
        ("rawset(getmetatable(_G), '__index', nil)", false),
        ("setmetatable(redis, {})", false),
        ("setmetatable(cjson, nil)", false),
        ("table.insert(redis, 1)", false),
        ("table.insert(_G, 1)", false),
        (
            "local t = setmetatable({}, {__newindex = string}) t.x = 1",
            true,
        ),
        ("table.concat = nil", true),
        ("math.floor = nil", true),
        ("coroutine.wrap = nil", true),
        ("bit.band = nil", true),
        ("cjson.encode = nil", true),
        ("cmsgpack.pack = nil", true),
        ("struct.pack = nil", true),
    ];
    for &(body, positioned) in cases {
        let msg = if positioned {
            format!("ERR user_script:1: {ro}")
        } else {
            format!("ERR {ro}")
        };
        assert_eq!(
            c.call_str(&["EVAL", body, "0"]),
            eval_error(&msg, body.as_bytes(), 1),
            "{body}"
        );
    }
    assert_eq!(
        c.call_str(&[
            "EVAL",
            "local ok, e = pcall(rawset, redis, 'x', 1) return e",
            "0"
        ]),
        format!("$34\r\n{ro}\r\n")
    );
    // Later scripts see the libraries unchanged, and no global `x`.
    let check = "return {redis.call('ping'), string.rep('a', 3), ('b'):rep(2)}";
    assert_eq!(
        c.call_str(&["EVAL", check, "0"]),
        "*3\r\n+PONG\r\n$3\r\naaa\r\n$2\r\nbb\r\n"
    );
    assert_eq!(
        c.call_str(&["EVAL", "return x", "0"]),
        eval_error(
            "ERR user_script:1: Script attempted to access nonexistent global variable 'x'",
            b"return x",
            1
        )
    );
    // The script's own tables, KEYS and ARGV are writable.
    assert_eq!(
        c.call_str(&[
            "EVAL",
            "KEYS[1] = 'x' table.insert(ARGV, 'y') local t = setmetatable({}, {}) \
             rawset(t, 1, 'z') return {KEYS[1], ARGV[2], t[1]}",
            "1",
            "a",
            "b"
        ]),
        "*3\r\n$1\r\nx\r\n$1\r\ny\r\n$1\r\nz\r\n"
    );
    assert_eq!(
        c.call_str(&["EVAL", "return {KEYS[1], ARGV[1]}", "1", "k", "v"]),
        "*2\r\n$1\r\nk\r\n$1\r\nv\r\n"
    );
}

#[test]
fn function_libraries_cannot_change_what_others_run_with() {
    let srv = common::Server::start();
    let mut c = Conn::open(&srv);
    let ro = "Attempt to modify a readonly table";
    for body in ["redis.call = 1", "redis.register_function = 1", "x = 1"] {
        let lib = format!("#!lua name=l\n{body}");
        assert_eq!(
            c.call_str(&["FUNCTION", "LOAD", &lib]),
            format!("-ERR Error registering functions: ERR user_function:2: {ro}\r\n")
        );
    }
    // A function keeping the load-time `redis` table, and functions
    // trying the run-time globals.
    let lib = "#!lua name=evil\nlocal r = redis\n\
        redis.register_function('keep', function() rawset(r, 'register_function', 1) end)\n\
        redis.register_function('assign', function() redis.call = 1 end)\n\
        redis.register_function('raw', function() rawset(string, 'rep', 1) end)\n\
        redis.register_function('meta', function() setmetatable(_G, nil) end)";
    assert_eq!(c.call_str(&["FUNCTION", "LOAD", lib]), "$4\r\nevil\r\n");
    let cases = [
        ("keep", format!("ERR {ro}"), 3),
        ("assign", format!("ERR user_function:4: {ro}"), 4),
        ("raw", format!("ERR {ro}"), 5),
        ("meta", format!("ERR {ro}"), 6),
    ];
    for (f, msg, line) in cases {
        assert_eq!(
            c.call_str(&["FCALL", f, "0"]),
            format!("-{msg} script: {f}, on @user_function:{line}.\r\n")
        );
    }
    let lib = "#!lua name=good\nredis.register_function('good', \
        function() return {redis.call('ping'), string.rep('a', 2)} end)";
    assert_eq!(c.call_str(&["FUNCTION", "LOAD", lib]), "$4\r\ngood\r\n");
    assert_eq!(
        c.call_str(&["FCALL", "good", "0"]),
        "*2\r\n+PONG\r\n$2\r\naa\r\n"
    );
}

/// `n` strings of `len` bytes that stock Lua 5.1 hashes alike: it samples
/// only every `(len >> 5) + 1`-th byte, counting from the end; these
/// differ only in bytes it skips.
fn colliding_strings(n: usize, len: usize) -> Vec<Vec<u8>> {
    let step = (len >> 5) + 1;
    let mut sampled = vec![false; len];
    let mut l1 = len;
    while l1 >= step {
        sampled[l1 - 1] = true;
        l1 -= step;
    }
    let free: Vec<usize> = (0..len).filter(|&i| !sampled[i]).collect();
    (0..n)
        .map(|i| {
            let mut s = vec![b'a'; len];
            let (mut k, mut j) = (i, free.len());
            while k > 0 {
                j -= 1;
                s[free[j]] = b'a' + (k % 26) as u8;
                k /= 26;
            }
            s
        })
        .collect()
}

/// As many strings of the same length that any hash tells apart: each
/// repeats its number's eight digits throughout.
fn plain_strings(n: usize, len: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{i:08}").into_bytes().repeat(len / 8))
        .collect()
}

fn time_eval_with(c: &mut Conn, strings: &[Vec<u8>]) -> Duration {
    let mut args: Vec<&[u8]> = vec![b"EVAL", b"return #ARGV", b"0"];
    args.extend(strings.iter().map(Vec::as_slice));
    let t = Instant::now();
    let reply = c.call(&args);
    let took = t.elapsed();
    assert_eq!(reply, format!(":{}\r\n", strings.len()).into_bytes());
    took
}

#[test]
fn arguments_crafted_to_collide_intern_in_linear_time() {
    // 50,000 colliding arguments took about 30 s with the sampling hash
    // (quadratic interning); with every byte hashed they cost what as many
    // ordinary arguments do.
    let (n, len) = (50_000, 256);
    let srv = common::Server::start();
    let mut c = Conn::open(&srv);
    let crafted = colliding_strings(n, len);
    let plain = plain_strings(n, len);
    let base = time_eval_with(&mut c, &plain);
    let took = time_eval_with(&mut c, &crafted);
    let bound = base * 10 + Duration::from_secs(4);
    assert!(
        took < bound,
        "{n} colliding arguments took {took:?} (ordinary ones {base:?})"
    );
}

#[test]
fn blocking_commands_in_scripts_answer_at_once() {
    let srv = common::Server::start();
    let mut c = Conn::open(&srv);
    let mut other = Conn::open(&srv);
    for body in [
        "return redis.call('BLMPOP','0.1','1','nokey','LEFT')",
        "return redis.call('BLMPOP','0','2','nokey','k2','RIGHT','COUNT','2')",
        "return redis.call('BZMPOP','0.1','1','nokey','MIN')",
        "return redis.pcall('BZMPOP','0','1','nokey','MAX','COUNT','3')",
    ] {
        assert_eq!(c.call_str(&["EVAL", body, "0"]), "$-1\r\n", "{body}");
        assert_eq!(other.call_str(&["PING"]), "+PONG\r\n");
    }
    // XREAD's BLOCK is refused in scripts (also in Redis).
    let body = "return redis.call('XREAD','BLOCK','0','STREAMS','nokey','$')";
    assert_eq!(
        c.call_str(&["EVAL", body, "0"]),
        eval_error(
            "ERR XREAD command is not allowed with BLOCK option from scripts",
            body.as_bytes(),
            1
        )
    );
    assert_eq!(
        c.call_str(&[
            "EVAL",
            "redis.setresp(3) return type(redis.call('BLMPOP','0','1','nokey','LEFT'))",
            "0"
        ]),
        "$3\r\nnil\r\n"
    );
    assert_eq!(
        other.call_str(&["SCRIPT", "KILL"]),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
    // With data they pop, as outside scripts.
    assert_eq!(c.call_str(&["RPUSH", "l", "a", "b"]), ":2\r\n");
    assert_eq!(
        c.call_str(&[
            "EVAL",
            "return redis.call('BLMPOP','0','1','l','LEFT','COUNT','5')",
            "0"
        ]),
        "*2\r\n$1\r\nl\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    // And inside MULTI.
    assert_eq!(c.call_str(&["MULTI"]), "+OK\r\n");
    assert_eq!(
        c.call_str(&[
            "EVAL",
            "return redis.call('BZMPOP','0','1','nokey','MIN')",
            "0"
        ]),
        "+QUEUED\r\n"
    );
    assert_eq!(
        c.call_str(&["BLMPOP", "0", "1", "nokey", "LEFT"]),
        "+QUEUED\r\n"
    );
    assert_eq!(c.call_str(&["EXEC"]), "*2\r\n$-1\r\n*-1\r\n");
    assert_eq!(other.call_str(&["PING"]), "+PONG\r\n");
}

#[test]
fn an_attribute_reply_reaches_a_script_as_the_reply_it_annotates() {
    let srv = common::Server::start_with(&["--enable-debug-command", "yes"]);
    let mut c = Conn::open(&srv);
    assert_eq!(
        c.call_str(&["DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1"]),
        "+OK\r\n"
    );
    let body = "redis.setresp(3) return redis.call('DEBUG','PROTOCOL','attrib')";
    assert_eq!(
        c.call_str(&["EVAL", body, "0"]),
        "$39\r\nSome real reply following the attribute\r\n"
    );
}
