//! RDB loading: any file (its checksum made right, so the fuzzer gets past
//! it) or DUMP value body decodes or fails with an error naming an offset
//! inside the input, never a panic or an allocation the input's size does
//! not justify; and whatever loads writes back to a file that loads again
//! with the same keys.
//!
//! Input: byte 0 picks the mode; the rest is an RDB file (mode 0, its last
//! 8 bytes replaced by the right CRC-64) or a DUMP value body (mode 1).
#![no_main]

use ferrokv::config::Config;
use ferrokv::persist::rdb::file::{Sink, parse, read_payload_value};
use ferrokv::persist::rdb::read::Limits;
use ferrokv::persist::rdb::write;
use ferrokv::store::Entry;
use ferrokv::util::crc64::crc64;
use libfuzzer_sys::fuzz_target;

#[derive(Default)]
struct Keep {
    keys: Vec<(usize, Entry)>,
    functions: Vec<Vec<u8>>,
}

impl Sink for Keep {
    fn key(&mut self, db: usize, entry: Entry) -> Result<(), String> {
        self.keys.push((db, entry));
        Ok(())
    }
    fn function(&mut self, code: &[u8]) -> Result<(), String> {
        self.functions.push(code.to_vec());
        Ok(())
    }
}

fn limits() -> Limits {
    thread_local!(static L: Limits = Limits::of(&Config::default()));
    L.with(|l| *l)
}

fuzz_target!(|input: &[u8]| {
    let [mode, rest @ ..] = input else {
        return;
    };
    let lim = limits();
    if mode & 1 == 0 {
        let mut file = rest.to_vec();
        if file.len() >= 8 {
            let n = file.len() - 8;
            let crc = crc64(0, &file[..n]);
            file[n..].copy_from_slice(&crc.to_le_bytes());
        }
        let mut keep = Keep::default();
        match parse(&file, 16, &lim, 0, &mut keep) {
            Err(e) => assert!(e.offset <= file.len(), "{e}"),
            Ok(_) => {
                let mut out = Vec::new();
                write::write_header(&mut out, 0, 0, false);
                for f in &keep.functions {
                    write::write_function(&mut out, f, write::Opts::default());
                }
                for (db, e) in &keep.keys {
                    write::write_db_start(&mut out, *db, 1, 0);
                    write::write_entry(&mut out, e.as_ref().key(), e.as_ref());
                }
                write::write_footer(&mut out, true);
                let mut again = Keep::default();
                parse(&out, 16, &lim, 0, &mut again).expect("a written file loads");
                assert_eq!(again.keys.len(), keep.keys.len());
            }
        }
    } else if let Ok(v) = read_payload_value(rest, &lim) {
        // RESTORE refuses an empty collection; it is never stored.
        if v.is_empty_collection() {
            return;
        }
        let e = v.into_entry(b"k", None, 0);
        let p = write::dump_payload(e.as_ref().value(), write::Opts::default());
        let body = ferrokv::persist::rdb::file::payload_body(&p).expect("own footer");
        read_payload_value(body, &lim).expect("a dumped value loads");
    }
});
