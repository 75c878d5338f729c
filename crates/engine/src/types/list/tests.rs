use super::*;

#[test]
fn back_lengths_read_from_either_end() {
    for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
        let item = vec![b'x'; len];
        let mut buf = Vec::new();
        put_element(&mut buf, b"a");
        put_element(&mut buf, &item);
        put_element(&mut buf, b"zz");
        assert_eq!(
            buf.len(),
            element_size(b"a") + element_size(&item) + element_size(b"zz")
        );
        let fwd: Vec<&[u8]> = Fwd::new(&buf).collect();
        let mut rev: Vec<&[u8]> = Rev::new(&buf).collect();
        rev.reverse();
        assert_eq!(fwd, vec![&b"a"[..], &item[..], &b"zz"[..]]);
        assert_eq!(fwd, rev);
    }
}

#[test]
fn fill_classes() {
    let f = Fill::new(-2);
    assert!(f.allows(8192, 100_000) && !f.allows(8193, 1));
    assert!(Fill::new(-5).allows(65_536, 1) && !Fill::new(-9).allows(65_537, 1));
    let f = Fill::new(3);
    assert!(f.allows(100, 3) && !f.allows(100, 4) && !f.allows(9000, 1));
    assert!(Fill::new(0).allows(10, 1) && !Fill::new(0).allows(10, 2));
}

fn items(q: &QuickList) -> Vec<Vec<u8>> {
    ListRef::Quick(q).iter().map(<[u8]>::to_vec).collect()
}

#[test]
fn quicklist_edits_keep_nodes_within_limits() {
    let fill = Fill::new(4);
    let mut q = QuickList::default();
    let mut model: Vec<Vec<u8>> = Vec::new();
    for i in 0..50u32 {
        let v = i.to_string().into_bytes();
        if i % 3 == 0 {
            q.push(true, &v, fill);
            model.insert(0, v);
        } else {
            q.push(false, &v, fill);
            model.push(v);
        }
    }
    q.insert(10, b"mid", fill);
    model.insert(10, b"mid".to_vec());
    q.set(30, b"set", fill);
    model[30] = b"set".to_vec();
    assert_eq!(items(&q), model);
    assert!(q.nodes.iter().all(|n| n.count >= 1 && n.count <= 4));
    let l = ListRef::Quick(&q);
    for (i, m) in model.iter().enumerate() {
        assert_eq!(l.get(i), Some(&m[..]));
        assert_eq!(l.iter_from(i).next(), Some(&m[..]));
    }
    let rev: Vec<Vec<u8>> = l.iter_rev().map(<[u8]>::to_vec).collect();
    assert_eq!(rev, model.iter().rev().cloned().collect::<Vec<_>>());
    q.trim(7, 20);
    assert_eq!(items(&q), model[7..27].to_vec());
    assert_eq!(q.len(), 20);
    assert_eq!(l_len(&q), 20);
}

fn l_len(q: &QuickList) -> usize {
    q.nodes.iter().map(|n| n.count as usize).sum()
}

#[test]
fn inline_round_trip() {
    let q = QuickList::rebuild([&b"a"[..], b"bb", b""], Fill::new(-2));
    let bytes = q.to_inline(Fill::new(-2)).unwrap();
    let (len, data) = split_inline(&bytes);
    assert_eq!(len, 3);
    let l = ListRef::Inline { len, data };
    assert_eq!(l.get(1), Some(&b"bb"[..]));
    assert_eq!(l.iter_rev().next(), Some(&b""[..]));
    assert_eq!(items(&QuickList::from_inline(&bytes)), items(&q));
    assert!(q.to_inline(Fill::new(2)).is_none());
}
