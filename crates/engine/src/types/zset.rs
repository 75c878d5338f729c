//! Sorted sets: the encoding-agnostic API the commands (and the blocking
//! pops) use, over two encodings:
//!
//! - packed ([`packed`], `listpack`): inline in the keyspace entry while the
//!   set has at most `zset-max-listpack-entries` members, none longer than
//!   `zset-max-listpack-value` bytes;
//! - full ([`Full`], `skiplist`): a member table plus an order-statistic
//!   tree, once a threshold is crossed. Like Redis, a set never goes back,
//!   except that a freshly stored destination (ZUNIONSTORE, ZRANGESTORE...)
//!   gets the encoding its final size calls for.
//!
//! Readers take a [`View`]; writers go through [`edit`], which hands out an
//! [`Edit`] and afterwards writes the result back (re-encoding a packed set,
//! converting when a threshold is crossed, deleting an emptied key).

mod full;
mod packed;
pub mod tree;

pub use full::Full;

use crate::error::Error;
use crate::store::{KeySlot, Object, Packed, Value, ValueRef};

/// The encoding thresholds in force.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub entries: usize,
    pub value: usize,
}

impl Limits {
    fn fit(&self, len: usize, longest: usize) -> bool {
        len <= self.entries && longest <= self.value
    }
}

/// The order of sorted sets: by score, then by member bytes.
#[inline]
pub fn before(a: (f64, &[u8]), b: (f64, &[u8])) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)
}

/// A sorted set to read.
pub enum View<'a> {
    Packed(&'a [u8]),
    Full(&'a Full),
}

impl<'a> View<'a> {
    /// The sorted set behind a stored value, or WRONGTYPE.
    pub fn of(v: ValueRef<'a>) -> Result<View<'a>, Error> {
        match v {
            ValueRef::Packed(Packed::ZSet, b) => Ok(View::Packed(b)),
            ValueRef::Obj(Object::ZSet(z)) => Ok(View::Full(z)),
            _ => Err(Error::WrongType),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            View::Packed(b) => packed::len(b),
            View::Full(z) => z.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            View::Packed(b) => packed::iter(b).find(|(m, _)| *m == member).map(|e| e.1),
            View::Full(z) => z.score(member),
        }
    }

    /// 0-based rank in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match self {
            View::Packed(b) => packed::iter(b).position(|(m, _)| m == member),
            View::Full(z) => z.rank(member),
        }
    }

    /// How many leading members satisfy `pred(score, member)`; `pred` must
    /// hold on a prefix of the order.
    pub fn count_while(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        match self {
            View::Packed(b) => packed::iter(b).take_while(|(m, s)| pred(*s, m)).count(),
            View::Full(z) => z.count_while(pred),
        }
    }

    /// Members with ranks `start..end`, ascending, or descending when `rev`,
    /// until `f` returns false.
    pub fn visit(
        &self,
        start: usize,
        end: usize,
        rev: bool,
        mut f: impl FnMut(&[u8], f64) -> bool,
    ) {
        match self {
            View::Packed(b) => {
                let end = end.min(packed::len(b));
                if start >= end {
                    return;
                }
                let span = packed::iter(b).skip(start).take(end - start);
                if rev {
                    let all: Vec<_> = span.collect();
                    all.into_iter().rev().all(|(m, s)| f(m, s));
                } else {
                    span.into_iter().all(|(m, s)| f(m, s));
                }
            }
            View::Full(z) => z.visit(start, end, rev, f),
        }
    }

    /// Every member and score, in order.
    pub fn to_vec(&self) -> Vec<(Vec<u8>, f64)> {
        let mut out = Vec::with_capacity(self.len());
        self.visit(0, usize::MAX, false, |m, s| {
            out.push((m.to_vec(), s));
            true
        });
        out
    }

    /// The member at rank `r`.
    pub fn get(&self, r: usize) -> Option<(&'a [u8], f64)> {
        match *self {
            View::Packed(b) => packed::iter(b).nth(r),
            View::Full(z) => z.get(r),
        }
    }

    /// A uniformly chosen member.
    pub fn random(&self) -> Option<(&'a [u8], f64)> {
        match *self {
            View::Packed(b) => {
                let n = packed::len(b);
                (n > 0).then(|| packed::iter(b).nth(crate::util::rand::u64() as usize % n))?
            }
            View::Full(z) => z.random(crate::util::rand::u64),
        }
    }

    pub fn encoding_is_packed(&self) -> bool {
        matches!(self, View::Packed(_))
    }
}

/// A packed set decoded for editing: member bytes in an arena, entries in order.
#[derive(Default)]
struct Small {
    arena: Vec<u8>,
    items: Vec<(f64, u32, u32)>,
}

impl Small {
    fn decode(buf: &[u8]) -> Small {
        let mut s = Small {
            arena: Vec::with_capacity(buf.len()),
            items: Vec::with_capacity(packed::len(buf) + 1),
        };
        for (m, sc) in packed::iter(buf) {
            let off = s.arena.len() as u32;
            s.arena.extend_from_slice(m);
            s.items.push((sc, off, m.len() as u32));
        }
        s
    }

    fn member(&self, i: usize) -> &[u8] {
        let (_, off, len) = self.items[i];
        &self.arena[off as usize..(off + len) as usize]
    }

    fn find(&self, member: &[u8]) -> Option<usize> {
        (0..self.items.len()).find(|&i| self.member(i) == member)
    }

    fn insert(&mut self, member: &[u8], score: f64) {
        let at = self.items.partition_point(|&(s, o, l)| {
            before(
                (s, &self.arena[o as usize..(o + l) as usize]),
                (score, member),
            )
        });
        let off = self.arena.len() as u32;
        self.arena.extend_from_slice(member);
        self.items.insert(at, (score, off, member.len() as u32));
    }

    fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], f64)> + '_ {
        (0..self.items.len()).map(|i| (self.member(i), self.items[i].0))
    }

    fn to_full(&self) -> Full {
        Full::from_sorted(self.iter())
    }
}

/// A sorted set being changed by one command.
pub struct Edit<'a> {
    repr: Repr<'a>,
    limits: Limits,
    changed: bool,
}

enum Repr<'a> {
    /// Packed, decoded; written back when the edit ends.
    Small(Small),
    /// Packed at the start, converted during this edit.
    Owned(Box<Full>),
    /// Full, changed in place.
    Full(&'a mut Full),
}

impl Edit<'_> {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Small(s) => s.items.len(),
            Repr::Owned(z) => z.len(),
            Repr::Full(z) => z.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn full(&self) -> Option<&Full> {
        match &self.repr {
            Repr::Small(_) => None,
            Repr::Owned(z) => Some(z),
            Repr::Full(z) => Some(z),
        }
    }

    fn full_mut(&mut self) -> Option<&mut Full> {
        match &mut self.repr {
            Repr::Small(_) => None,
            Repr::Owned(z) => Some(z),
            Repr::Full(z) => Some(z),
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Small(s) => s.find(member).map(|i| s.items[i].0),
            _ => self.full().and_then(|z| z.score(member)),
        }
    }

    /// Adds a member known to be absent, converting to the full encoding
    /// when a threshold is crossed.
    pub fn insert(&mut self, member: &[u8], score: f64) {
        self.changed = true;
        if let Repr::Small(s) = &mut self.repr {
            if self.limits.fit(s.items.len() + 1, member.len()) {
                s.insert(member, score);
                return;
            }
            self.repr = Repr::Owned(Box::new(s.to_full()));
        }
        self.full_mut().expect("full").insert(member, score);
    }

    /// Changes the score of a present member.
    pub fn set_score(&mut self, member: &[u8], score: f64) {
        self.changed = true;
        match &mut self.repr {
            Repr::Small(s) => {
                let i = s.find(member).expect("member present");
                s.items.remove(i);
                s.insert(member, score);
            }
            _ => self.full_mut().expect("full").set_score(member, score),
        }
    }

    /// Removes a member; false if absent.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        let gone = match &mut self.repr {
            Repr::Small(s) => s.find(member).map(|i| s.items.remove(i)).is_some(),
            _ => self.full_mut().expect("full").remove(member).is_some(),
        };
        self.changed |= gone;
        gone
    }

    /// How many leading members satisfy `pred(score, member)` (a prefix).
    pub fn count_while(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        match &self.repr {
            Repr::Small(s) => s.iter().take_while(|(m, sc)| pred(*sc, m)).count(),
            _ => self.full().expect("full").count_while(pred),
        }
    }

    /// Removes the members with ranks `start..end`; returns how many.
    pub fn remove_ranks(&mut self, start: usize, end: usize) -> usize {
        let end = end.min(self.len());
        if start >= end {
            return 0;
        }
        self.changed = true;
        match &mut self.repr {
            Repr::Small(s) => {
                s.items.drain(start..end);
            }
            _ => {
                let z = self.full_mut().expect("full");
                let mut doomed = Vec::with_capacity(end - start);
                z.visit(start, end, false, |m, _| {
                    doomed.push(m.to_vec());
                    true
                });
                for m in doomed {
                    z.remove(&m);
                }
            }
        }
        end - start
    }

    /// Removes up to `count` members from the low (or, `max`, high) end,
    /// returning them in pop order.
    pub fn pop(&mut self, max: bool, count: usize) -> Vec<(Vec<u8>, f64)> {
        let len = self.len();
        let n = count.min(len);
        let (start, end) = if max { (len - n, len) } else { (0, n) };
        let mut out = Vec::with_capacity(n);
        match &self.repr {
            Repr::Small(s) => {
                let span = (start..end).map(|i| (s.member(i).to_vec(), s.items[i].0));
                if max {
                    out.extend(span.rev());
                } else {
                    out.extend(span);
                }
            }
            _ => self.full().expect("full").visit(start, end, max, |m, sc| {
                out.push((m.to_vec(), sc));
                true
            }),
        }
        self.remove_ranks(start, end);
        out
    }
}

/// Runs `f` on the sorted set at `slot`, then stores the result: a packed
/// set is re-encoded (or converted), an emptied set is deleted. With
/// `create`, a missing key starts as an empty set (stored only if `f` adds
/// members); without it, a missing key gives `Ok(None)`. WRONGTYPE for
/// other types.
pub fn edit<R>(
    slot: &mut KeySlot<'_, '_>,
    limits: Limits,
    create: bool,
    f: impl FnOnce(&mut Edit<'_>) -> R,
) -> Result<Option<R>, Error> {
    let idx = slot.lookup();
    let small = match idx.map(|i| slot.entry(i).value()) {
        None if !create => return Ok(None),
        None => Some(Small::default()),
        Some(ValueRef::Packed(Packed::ZSet, b)) => Some(Small::decode(b)),
        Some(ValueRef::Obj(Object::ZSet(_))) => None,
        Some(_) => return Err(Error::WrongType),
    };
    if let Some(i) = idx {
        slot.touch(i);
    }
    let Some(small) = small else {
        let i = idx.expect("full sets exist");
        let mut entry = slot.entry_mut(i);
        let Some(Object::ZSet(z)) = entry.object_mut() else {
            unreachable!("checked above")
        };
        let mut ed = Edit {
            repr: Repr::Full(z),
            limits,
            changed: false,
        };
        let r = f(&mut ed);
        let empty = ed.is_empty();
        drop(entry);
        if empty {
            slot.remove_at(i);
        }
        return Ok(Some(r));
    };
    let mut ed = Edit {
        repr: Repr::Small(small),
        limits,
        changed: false,
    };
    let r = f(&mut ed);
    if ed.changed {
        write_back(slot, idx, ed.repr);
    }
    Ok(Some(r))
}

/// Stores a set that was edited away from its place (packed or converted).
fn write_back(slot: &mut KeySlot<'_, '_>, idx: Option<usize>, repr: Repr<'_>) {
    let empty = match &repr {
        Repr::Small(s) => s.items.is_empty(),
        Repr::Owned(z) => z.is_empty(),
        Repr::Full(_) => unreachable!("full sets change in place"),
    };
    match (idx, empty) {
        (None, true) => {}
        (Some(i), true) => {
            slot.remove_at(i);
        }
        (_, false) => {
            let bytes;
            let value = match repr {
                Repr::Small(s) => {
                    bytes = packed::encode(s.iter());
                    Value::Packed(Packed::ZSet, &bytes)
                }
                Repr::Owned(z) => Value::Obj(Box::new(Object::ZSet(z))),
                Repr::Full(_) => unreachable!(),
            };
            match idx {
                Some(i) => slot.set_value(i, value, true),
                None => {
                    slot.insert(value, None);
                }
            }
        }
    }
}

/// Members with their scores, owned.
pub type Scored = Vec<(Vec<u8>, f64)>;

/// Pops up to `count` members from the low end (or, `max`, the high end)
/// of the sorted set at `slot`, deleting the key when it empties.
/// `Ok(None)` when the key is missing; WRONGTYPE as `Err`.
pub fn pop(slot: &mut KeySlot<'_, '_>, max: bool, count: usize) -> Result<Option<Scored>, Error> {
    // Popping never adds, so no threshold can be crossed.
    let limits = Limits {
        entries: usize::MAX,
        value: usize::MAX,
    };
    edit(slot, limits, false, |z| z.pop(max, count))
}

/// The value to store for a set built by a command (ZUNIONSTORE and the
/// like), members in (score, member) order, in the encoding its size calls
/// for. `None` for an empty set (the destination is deleted instead).
pub fn build(items: &[(Vec<u8>, f64)], limits: Limits) -> Option<Built> {
    if items.is_empty() {
        return None;
    }
    let longest = items.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    let it = items.iter().map(|(m, s)| (m.as_slice(), *s));
    Some(if limits.fit(items.len(), longest) {
        Built::Packed(packed::encode(it))
    } else {
        Built::Full(Box::new(Object::ZSet(Box::new(Full::from_sorted(it)))))
    })
}

/// A built sorted set, ready to become a keyspace value.
pub enum Built {
    Packed(Vec<u8>),
    Full(Box<Object>),
}

impl Built {
    pub fn value(&mut self) -> Value<'_> {
        match self {
            Built::Packed(b) => Value::Packed(Packed::ZSet, b),
            Built::Full(o) => Value::Obj(std::mem::replace(o, Box::new(Object::placeholder()))),
        }
    }
}
