//! FUNCTION RESTORE payloads: any bytes given a valid footer (version and
//! CRC-64) decode into library codes or fail with an error, never a panic
//! or an allocation the payload's size does not justify; and the payload
//! FUNCTION DUMP writes decodes back to the same codes.
//!
//! Input: byte 0 picks the mode; the rest is the payload body (mode 0, the
//! footer appended), or library codes separated by 0xff (mode 1).
#![no_main]

use ferrokv::scripting::function_dump::{encode_libraries, for_each_library};
use ferrokv::util::crc64::crc64;
use libfuzzer_sys::fuzz_target;

fn decode(payload: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut codes = Vec::new();
    for_each_library(payload, |code| {
        codes.push(code.to_vec());
        Ok(())
    })?;
    Ok(codes)
}

fuzz_target!(|input: &[u8]| {
    let [mode, rest @ ..] = input else {
        return;
    };
    if mode & 1 == 0 {
        // Body, then version 10 (or whatever the input's mode byte says)
        // and the checksum of both, as a forger would write them.
        let mut payload = rest.to_vec();
        let version = if mode & 2 == 0 { 10 } else { u16::from(*mode) };
        payload.extend_from_slice(&version.to_le_bytes());
        let crc = crc64(0, &payload);
        payload.extend_from_slice(&crc.to_le_bytes());
        if let Ok(codes) = decode(&payload) {
            // Nothing decoded can be larger than LZF lets the payload expand.
            let total: usize = codes.iter().map(|c| c.len()).sum();
            assert!(total <= payload.len().saturating_mul(90) + 64);
        }
        // One bit off in the checksum and it is refused, whatever it holds.
        let last = payload.len() - 1;
        payload[last] ^= 1;
        assert_eq!(
            decode(&payload),
            Err(ferrokv::scripting::function_dump::BAD_PAYLOAD.to_string())
        );
    } else {
        let codes: Vec<&[u8]> = rest.split(|&b| b == 0xff).collect();
        let payload = encode_libraries(codes.iter().copied());
        let back = decode(&payload).expect("a dumped payload loads");
        assert_eq!(back, codes);
    }
});
