//! The scripting libraries' decoders on arbitrary bytes, called the way a
//! script calls them: `cjson.decode`, `cmsgpack.unpack` (and `unpack_one`,
//! `unpack_limit`), `struct.unpack` / `struct.size` with a fuzzed format,
//! and decode-then-encode round trips. Each call returns values or raises a
//! Lua error; a Rust panic inside a library function reaches here and
//! fails the run.
//!
//! Input: byte 0 picks the call; bytes 1-2 are small integers (offset,
//! limit, position); byte 3 is the format's length; then the format, then
//! the data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mlua::{Function, Lua};

const CALL: &str = r#"
return function(mode, s, a, b, fmt)
  if mode == 0 then return cjson.decode(s)
  elseif mode == 1 then return cmsgpack.unpack(s)
  elseif mode == 2 then return cmsgpack.unpack_one(s, a)
  elseif mode == 3 then return cmsgpack.unpack_limit(s, a, b)
  elseif mode == 4 then return struct.unpack(fmt, s)
  elseif mode == 5 then return struct.unpack(fmt, s, a)
  elseif mode == 6 then return struct.size(fmt)
  elseif mode == 7 then return cjson.encode(cjson.decode(s))
  elseif mode == 8 then return cmsgpack.pack(cmsgpack.unpack(s))
  else return struct.pack(fmt, struct.unpack(fmt, s))
  end
end
"#;

thread_local! {
    static VM: (Lua, Function) = {
        let lua = Lua::new();
        // A decoder that builds more than this from a few KiB is a bug the
        // limit turns into a Lua error; rss_limit_mb catches what is not
        // Lua memory.
        lua.set_memory_limit(256 << 20).expect("memory limit");
        ferrokv::scripting::cjson::install(&lua).expect("cjson");
        ferrokv::scripting::cmsgpack::install(&lua).expect("cmsgpack");
        ferrokv::scripting::struct_lib::install(&lua).expect("struct");
        let call: Function = lua.load(CALL).eval().expect("caller");
        (lua, call)
    };
}

fuzz_target!(|input: &[u8]| {
    let [mode, a, b, fmt_len, rest @ ..] = input else {
        return;
    };
    let fmt_len = (*fmt_len as usize % 33).min(rest.len());
    let (fmt, data) = rest.split_at(fmt_len);
    VM.with(|(lua, call)| {
        let s = lua.create_string(data).unwrap();
        let fmt = lua.create_string(fmt).unwrap();
        // Offsets and limits around the data's edges, negative ones too.
        let a = i64::from(*a as i8);
        let b = i64::from(*b as i8);
        let r = call.call::<mlua::MultiValue>((mode % 10, s, a, b, fmt));
        if let Err(e) = r {
            // Errors are Lua errors with a message, never Rust panics
            // (mlua resumes those on this side, failing the run).
            assert!(!e.to_string().is_empty());
        }
        lua.gc_collect().ok();
    });
});
