//! Streams in RDB (types 15, 19 and 21).
//!
//! ```text
//! [nodes] ([master id: 16-byte string][node listpack: string])*
//! [length] [last id ms][last id seq]
//! v2+: [first id ms][seq] [max deleted id ms][seq] [entries added]
//! [groups] ( [name] [last id ms][seq] v2+: [entries read]
//!            [pel] ([id: 16 raw bytes][delivery ms: u64 LE][delivery count])*
//!            [consumers] ([name][seen ms: u64 LE] v3: [active ms]
//!                         [pel] [id: 16 raw bytes]*)* )*
//! ```
//! A node listpack starts with the master entry: live count, deleted
//! count, the master field count, the field names and a 0. Each entry then
//! is flags (1 deleted, 2 same fields as the master), ms and seq as
//! differences from the master id, the values alone (same fields) or a
//! field count and pairs, and last the number of listpack elements the
//! entry took before this one (so it can be walked backwards).

use super::listpack::{self, Builder, Item};
use super::read::{Reader, Result};
use super::write::{Opts, write_len, write_millis, write_string};
use super::*;
use crate::types::stream::{Consumer, Group, NodeLimits, Pending, Stream, StreamId};

const F_DELETED: i64 = 1;
const F_SAMEFIELDS: i64 = 2;

fn raw_id(out: &mut Vec<u8>, id: StreamId) {
    out.extend_from_slice(&id.ms.to_be_bytes());
    out.extend_from_slice(&id.seq.to_be_bytes());
}

fn write_id(out: &mut Vec<u8>, id: StreamId) {
    write_len(out, id.ms);
    write_len(out, id.seq);
}

pub fn write(out: &mut Vec<u8>, s: &Stream, opts: Opts) {
    let nodes: Vec<_> = s.nodes().filter(|n| n.live > 0).collect();
    write_len(out, nodes.len() as u64);
    for n in nodes {
        let mut key = Vec::with_capacity(16);
        raw_id(&mut key, n.master);
        write_string(out, &key, opts);
        let fields: Vec<&[u8]> = n.master_fields().collect();
        let mut lp = Builder::new();
        lp.push_int(n.live as i64);
        lp.push_int(0);
        lp.push_int(fields.len() as i64);
        for f in &fields {
            lp.push(f);
        }
        lp.push_int(0);
        for e in n.iter() {
            let same = e.pairs.len() == fields.len() * 2
                && e.pairs.iter().step_by(2).zip(&fields).all(|(a, b)| a == b);
            lp.push_int(if same { F_SAMEFIELDS } else { 0 });
            lp.push_int(e.id.ms.wrapping_sub(n.master.ms) as i64);
            lp.push_int(e.id.seq.wrapping_sub(n.master.seq) as i64);
            let nf = e.pairs.len() / 2;
            if same {
                for v in e.pairs.iter().skip(1).step_by(2) {
                    lp.push(v);
                }
                lp.push_int(nf as i64 + 3);
            } else {
                lp.push_int(nf as i64);
                for p in &e.pairs {
                    lp.push(p);
                }
                lp.push_int(2 * nf as i64 + 4);
            }
        }
        write_string(out, &lp.finish(), opts);
    }
    write_len(out, s.len());
    write_id(out, s.last_id);
    write_id(out, s.first_id);
    write_id(out, s.max_deleted_id);
    write_len(out, s.entries_added);
    write_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        write_string(out, name, opts);
        write_id(out, g.last_id);
        write_len(out, g.entries_read.unwrap_or(-1) as u64);
        write_len(out, g.pel.len() as u64);
        for (id, p) in &g.pel {
            raw_id(out, *id);
            write_millis(out, p.delivery_time);
            write_len(out, p.delivery_count);
        }
        write_len(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            write_string(out, cname, opts);
            write_millis(out, c.seen_time);
            write_len(out, c.pel.len() as u64);
            for id in &c.pel {
                raw_id(out, *id);
            }
        }
    }
}

fn read_id(r: &mut Reader<'_>) -> Result<StreamId> {
    Ok(StreamId {
        ms: r.length()?,
        seq: r.length()?,
    })
}

fn int_at(items: &[Item<'_>], i: usize) -> std::result::Result<i64, &'static str> {
    items
        .get(i)
        .and_then(|it| it.as_int())
        .ok_or("bad stream node listpack")
}

/// Appends a node's live entries to `s`.
fn load_node(
    s: &mut Stream,
    master: StreamId,
    lp: &[u8],
    lim: NodeLimits,
) -> std::result::Result<(), &'static str> {
    let items = listpack::decode(lp)?;
    if items.is_empty() {
        return Err("empty listpack inside stream");
    }
    let nfields = usize::try_from(int_at(&items, 2)?).map_err(|_| "bad master field count")?;
    let fields_end = 3usize
        .checked_add(nfields)
        .filter(|&e| e < items.len())
        .ok_or("bad master field count")?;
    let fields: Vec<Vec<u8>> = items[3..fields_end].iter().map(|i| i.to_vec()).collect();
    if int_at(&items, fields_end)? != 0 {
        return Err("master entry not terminated by 0");
    }
    let declared_live = int_at(&items, 0)?;
    let declared_deleted = int_at(&items, 1)?;
    let (mut live, mut deleted) = (0i64, 0i64);
    let mut pos = fields_end + 1;
    while pos < items.len() {
        let entry_start = pos;
        let flags = int_at(&items, pos)?;
        let ms = master.ms.wrapping_add(int_at(&items, pos + 1)? as u64);
        let seq = master.seq.wrapping_add(int_at(&items, pos + 2)? as u64);
        pos += 3;
        let mut pairs: Vec<Vec<u8>> = Vec::new();
        if flags & F_SAMEFIELDS != 0 {
            let vals = items
                .get(pos..pos + nfields)
                .ok_or("stream entry overflows")?;
            for (f, v) in fields.iter().zip(vals) {
                pairs.push(f.clone());
                pairs.push(v.to_vec());
            }
            pos += nfields;
        } else {
            let nf = usize::try_from(int_at(&items, pos)?).map_err(|_| "bad field count")?;
            let end = nf
                .checked_mul(2)
                .and_then(|n| n.checked_add(pos + 1))
                .filter(|&e| e <= items.len())
                .ok_or("stream entry overflows")?;
            pairs.extend(items[pos + 1..end].iter().map(|i| i.to_vec()));
            pos = end;
        }
        // lp-count: the elements of this entry before it, ids included.
        if usize::try_from(int_at(&items, pos)?).ok() != Some(pos - entry_start) {
            return Err("entry lp-count does not match");
        }
        pos += 1;
        if flags & F_DELETED != 0 {
            deleted += 1;
            continue;
        }
        live += 1;
        let id = StreamId { ms, seq };
        if pairs.is_empty() {
            return Err("stream entry without fields");
        }
        if !s.is_empty() && id <= s.last_id {
            return Err("stream entries out of order");
        }
        let refs: Vec<&[u8]> = pairs.iter().map(|p| p.as_slice()).collect();
        s.append(id, &refs, lim);
    }
    if (live, deleted) != (declared_live, declared_deleted) {
        return Err("master entry counts do not match the entries");
    }
    if live + deleted == 0 {
        return Err("stream node without entries");
    }
    Ok(())
}

pub fn read(r: &mut Reader<'_>, ty: u8, lim: NodeLimits) -> Result<Stream> {
    let mut s = Stream::new();
    let nodes = r.count(2)?;
    for _ in 0..nodes {
        let at = r.offset();
        let key = r.string()?;
        if key.len() != 16 {
            return Err(Error::new(at, "stream node key is not a 16-byte id"));
        }
        let mut k = Reader::new(&key);
        let master = k.raw_id()?;
        let at = r.offset();
        let lp = r.string()?;
        load_node(&mut s, master, &lp, lim)
            .map_err(|m| Error::new(at, format!("Stream listpack integrity check failed ({m})")))?;
    }
    let at = r.offset();
    let length = r.length()?;
    if length != s.len() {
        return Err(Error::new(at, "stream length does not match its entries"));
    }
    s.last_id = read_id(r)?;
    if ty >= T_STREAM_LISTPACKS_2 {
        s.first_id = read_id(r)?;
        s.max_deleted_id = read_id(r)?;
        s.entries_added = r.length()?;
    } else {
        s.entries_added = s.len();
        s.max_deleted_id = StreamId::MIN;
    }
    let ngroups = r.count(3)?;
    for _ in 0..ngroups {
        let at = r.offset();
        let name = r.string()?;
        let last_id = read_id(r)?;
        let entries_read = if ty >= T_STREAM_LISTPACKS_2 {
            let n = r.length()? as i64;
            (n >= 0).then_some(n)
        } else {
            s.estimate_entries_read(last_id)
        };
        let mut g = Group::new(last_id, entries_read);
        let npel = r.count(17)?;
        for _ in 0..npel {
            let id = r.raw_id()?;
            let delivery_time = r.millis()?;
            let delivery_count = r.length()?;
            let p = Pending {
                consumer: Vec::new(),
                delivery_time,
                delivery_count,
            };
            if g.pel.insert(id, p).is_some() {
                return Err(Error::new(
                    at,
                    "Duplicated global PEL entry loading stream consumer group",
                ));
            }
        }
        let nconsumers = r.count(10)?;
        for _ in 0..nconsumers {
            let cname = r.string()?;
            let seen_time = r.millis()?;
            if ty >= T_STREAM_LISTPACKS_3 {
                r.millis()?; // active time (7.2); 7.0 has no such field
            }
            let n = r.count(16)?;
            let mut c = Consumer {
                seen_time,
                ..Consumer::default()
            };
            for _ in 0..n {
                let at = r.offset();
                let id = r.raw_id()?;
                let Some(p) = g.pel.get_mut(&id) else {
                    return Err(Error::new(
                        at,
                        "consumer pending entry not in the group's PEL",
                    ));
                };
                if !p.consumer.is_empty() {
                    return Err(Error::new(
                        at,
                        "Duplicated consumer PEL entry loading a stream consumer group",
                    ));
                }
                p.consumer = cname.clone();
                c.pel.insert(id);
            }
            if g.consumers.insert(cname, c).is_some() {
                return Err(Error::new(at, "Duplicate stream consumer detected."));
            }
        }
        if g.pel.values().any(|p| p.consumer.is_empty()) {
            return Err(Error::new(at, "group pending entry without a consumer"));
        }
        if s.groups.insert(name, g).is_some() {
            return Err(Error::new(at, "duplicate consumer group"));
        }
    }
    Ok(s)
}
