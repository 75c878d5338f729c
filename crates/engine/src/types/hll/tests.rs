use super::*;

/// A deterministic stream of distinct elements.
fn elems(tag: &str, n: usize) -> impl Iterator<Item = Vec<u8>> + '_ {
    (0..n).map(move |i| format!("{tag}:{i}").into_bytes())
}

#[test]
fn empty_hll_is_one_xzero() {
    let v = new_sparse();
    let mut want = b"HYLL\x01".to_vec();
    want.extend_from_slice(&[0; 11]);
    want.extend_from_slice(b"\x7f\xff");
    assert_eq!(v, want);
    assert!(is_hll(&v));
    assert_eq!(count(&v), Ok(0));
    assert_eq!(decode_sparse(&v), "Z:16384");
}

#[test]
fn sparse_bytes_match_redis() {
    // Redis 7.0.15: PFADD a x y z; GET a.
    let mut v = new_sparse();
    for e in [&b"x"[..], b"y", b"z"] {
        assert_eq!(add(&mut v, e, 3000), Ok(true));
    }
    let mut want = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80".to_vec();
    want.extend_from_slice(b"a\x84\x80X\xcd\x88E\xa0\x84\x08");
    assert_eq!(v, want);
    assert_eq!(
        decode_sparse(&v),
        "Z:8581 v:1,1 Z:6350 v:3,1 Z:1441 v:2,1 z:9"
    );
    assert_eq!(count(&v), Ok(3));
    assert_eq!(add(&mut v, b"x", 3000), Ok(false));
}

#[test]
fn dense_registers_round_trip() {
    let mut regs = vec![0u8; DENSE_SIZE - HDR];
    for i in 0..REGISTERS {
        dense_put(&mut regs, i, (i % 64) as u8);
    }
    for i in 0..REGISTERS {
        assert_eq!(dense_get(&regs, i), (i % 64) as u8, "register {i}");
    }
    let mut v = vec![0u8; HDR];
    v.extend_from_slice(&regs);
    let mut seen = 0;
    dense_each(&v, |i, r| {
        assert_eq!(r, (i % 64) as u8);
        seen += 1;
    });
    assert_eq!(seen, REGISTERS);
}

#[test]
fn sparse_and_dense_agree() {
    for n in [0, 1, 10, 100, 1000, 5000] {
        let mut sparse = new_sparse();
        let mut dense = new_sparse();
        to_dense(&mut dense).unwrap();
        for e in elems("agree", n) {
            add(&mut sparse, &e, usize::MAX).unwrap();
            add(&mut dense, &e, usize::MAX).unwrap();
        }
        assert!(is_sparse(&sparse));
        assert_eq!(registers(&sparse), registers(&dense), "n={n}");
        assert_eq!(count(&sparse), count(&dense), "n={n}");
        // No two neighbouring VALs that could have been one opcode.
        let converted = sparse_to_dense(&sparse).unwrap();
        assert_eq!(&converted[HDR..], &dense[HDR..]);
    }
}

#[test]
fn promotes_past_max_bytes_and_for_big_values() {
    let mut v = new_sparse();
    let mut promoted_at = None;
    for (i, e) in elems("promote", 3000).enumerate() {
        add(&mut v, &e, 300).unwrap();
        if !is_sparse(&v) {
            promoted_at = Some(i);
            break;
        }
        assert!(v.len() <= 300);
    }
    assert!(promoted_at.is_some());
    assert_eq!(v.len(), DENSE_SIZE);
    // A count above 32 cannot be a VAL: dense at once.
    let mut v = new_sparse();
    assert_eq!(set_register(&mut v, 7, 33, 3000), Ok(true));
    assert!(!is_sparse(&v));
    assert_eq!(registers(&v).unwrap()[7], 33);
}

#[test]
fn estimates_are_close() {
    for n in [10usize, 1000, 20_000, 200_000] {
        let mut v = new_sparse();
        for e in elems("est", n) {
            add(&mut v, &e, 3000).unwrap();
        }
        let c = count(&v).unwrap() as f64;
        let err = (c - n as f64).abs() / n as f64;
        assert!(err < 0.03, "n={n} estimate={c}");
    }
}

#[test]
fn merge_takes_register_maxima() {
    let (mut a, mut b, mut both) = (new_sparse(), new_sparse(), new_sparse());
    for e in elems("a", 300) {
        add(&mut a, &e, 3000).unwrap();
        add(&mut both, &e, 3000).unwrap();
    }
    for e in elems("b", 300) {
        add(&mut b, &e, 3000).unwrap();
        add(&mut both, &e, 3000).unwrap();
    }
    to_dense(&mut b).unwrap();
    let mut max = [0u8; REGISTERS];
    merge_into(&mut max, &a).unwrap();
    merge_into(&mut max, &b).unwrap();
    assert_eq!(max.to_vec(), registers(&both).unwrap());
    assert_eq!(count_registers(&max), count(&both).unwrap());
}

#[test]
fn cache_bits() {
    let mut v = new_sparse();
    assert_eq!(cached(&v), Some(0));
    invalidate(&mut v);
    assert_eq!(cached(&v), None);
    set_cached(&mut v, 12345);
    assert_eq!(cached(&v), Some(12345));
}

#[test]
fn corrupted_values_never_panic() {
    // A small xorshift generator: reproducible corruption.
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for round in 0..2000 {
        let mut v = new_sparse();
        for e in elems("c", (next() % 400) as usize) {
            add(&mut v, &e, 3000).unwrap();
        }
        if round % 3 == 0 {
            to_dense(&mut v).unwrap();
        }
        for _ in 0..1 + next() % 5 {
            let pos = HDR + (next() as usize) % (v.len() - HDR);
            v[pos] = next() as u8;
        }
        if round % 5 == 0 {
            let cut = HDR + (next() as usize) % (v.len() - HDR);
            v.truncate(cut);
        }
        if !is_hll(&v) {
            continue;
        }
        let _ = count(&v);
        let _ = decode_sparse(&v);
        let _ = registers(&v);
        let mut max = [0u8; REGISTERS];
        let _ = merge_into(&mut max, &v);
        for e in elems("after", 20) {
            let _ = add(&mut v, &e, 3000);
        }
        assert!(v.len() >= HDR);
    }
}

#[test]
fn truncated_opcodes_are_bounded() {
    // A lone XZERO first byte at the end covers 1 + (0x3f << 8) registers.
    let mut v = new_sparse();
    v.truncate(HDR + 1);
    assert_eq!(decode_sparse(&v), "Z:16129");
    assert_eq!(count(&v), Err(Corrupt));
    let _ = add(&mut v, b"x", 3000);
    let _ = to_dense(&mut v);
}

#[test]
fn self_test_passes() {
    assert_eq!(self_test(), Ok(()));
}

#[test]
fn values_that_are_not_hlls_are_refused_not_indexed() {
    for bad in [
        &b""[..],
        b"HYLL",
        b"HYLL\x00short",
        b"HYLL\x02\0\0\0\0\0\0\0\0\0\0\0\x7f\xff",
    ] {
        let mut v = bad.to_vec();
        assert!(!is_hll(&v));
        assert_eq!(count(&v), Err(Corrupt));
        assert_eq!(add(&mut v, b"x", 3000), Err(Corrupt));
        assert_eq!(to_dense(&mut v), Err(Corrupt));
        assert_eq!(registers(&v), Err(Corrupt));
        let mut max = [0u8; REGISTERS];
        assert_eq!(merge_into(&mut max, &v), Err(Corrupt));
        let _ = cached(&v);
        invalidate(&mut v);
        set_cached(&mut v, 1);
        let _ = decode_sparse(&v);
    }
}
