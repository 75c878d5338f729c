//! An order-statistic B+tree: a sorted multiset-free sequence with
//! O(log n) insert, remove, rank and select.
//!
//! Leaves hold up to [`LEAF_MAX`] items in order; inner nodes hold up to
//! [`INNER_MAX`] children together with, per child, its element count and its
//! smallest item. The counts give rank arithmetic; the minima route searches
//! and always name a live item (they are refreshed on the way back up after
//! every change), which matters because items may point into storage the
//! tree does not own. Compared with a skiplist with spans this spends about
//! one item slot per element (plus slack) instead of a node per element.
//!
//! The order is given by [`Ordered::lt`]; items must be distinct under it.

/// A totally ordered, cheap-to-copy item.
pub trait Ordered: Copy {
    fn lt(&self, other: &Self) -> bool;
}

const LEAF_MAX: usize = 64;
const INNER_MAX: usize = 64;
/// Nodes below these sizes are merged with a neighbour.
const LEAF_MIN: usize = LEAF_MAX / 4;
const INNER_MIN: usize = INNER_MAX / 4;
/// Fill used when building from sorted input.
const BULK_FILL: usize = LEAF_MAX * 3 / 4;

#[derive(Clone)]
enum Node<T> {
    Leaf(Vec<T>),
    Inner(Box<Inner<T>>),
}

#[derive(Clone)]
struct Inner<T> {
    kids: Vec<Node<T>>,
    counts: Vec<usize>,
    mins: Vec<T>,
}

#[derive(Clone)]
pub struct Tree<T> {
    root: Node<T>,
    len: usize,
}

impl<T: Ordered> Default for Tree<T> {
    fn default() -> Self {
        Tree::new()
    }
}

impl<T: Ordered> Node<T> {
    fn count(&self) -> usize {
        match self {
            Node::Leaf(v) => v.len(),
            Node::Inner(n) => n.counts.iter().sum(),
        }
    }

    fn min(&self) -> T {
        match self {
            Node::Leaf(v) => v[0],
            Node::Inner(n) => n.mins[0],
        }
    }

    fn is_underfull(&self) -> bool {
        match self {
            Node::Leaf(v) => v.len() < LEAF_MIN,
            Node::Inner(n) => n.kids.len() < INNER_MIN,
        }
    }

    fn is_overfull(&self) -> bool {
        match self {
            Node::Leaf(v) => v.len() > LEAF_MAX,
            Node::Inner(n) => n.kids.len() > INNER_MAX,
        }
    }

    /// Splits off the upper half.
    fn split(&mut self) -> Node<T> {
        match self {
            Node::Leaf(v) => {
                let right = v.split_off(v.len() / 2);
                Node::Leaf(right)
            }
            Node::Inner(n) => {
                let at = n.kids.len() / 2;
                Node::Inner(Box::new(Inner {
                    kids: n.kids.split_off(at),
                    counts: n.counts.split_off(at),
                    mins: n.mins.split_off(at),
                }))
            }
        }
    }

    /// Appends `right` (the next node at the same depth) to this one.
    fn absorb(&mut self, right: Node<T>) {
        match (self, right) {
            (Node::Leaf(a), Node::Leaf(b)) => a.extend(b),
            (Node::Inner(a), Node::Inner(b)) => {
                let b = *b;
                a.kids.extend(b.kids);
                a.counts.extend(b.counts);
                a.mins.extend(b.mins);
            }
            _ => unreachable!("siblings have the same depth"),
        }
    }
}

/// Splits `v` into the fewest runs of at most `fill` elements, of sizes
/// differing by at most one.
fn even_chunks<X>(v: Vec<X>, fill: usize) -> Vec<Vec<X>> {
    let k = v.len().div_ceil(fill);
    let mut out = Vec::with_capacity(k);
    let mut it = v.into_iter();
    for i in 0..k {
        let n = it.len() / (k - i);
        out.push(it.by_ref().take(n).collect());
    }
    out
}

/// Index of the child whose range holds `item`: the last child whose
/// minimum is not above it (child 0 for an item below every minimum).
fn route<T: Ordered>(mins: &[T], item: &T) -> usize {
    mins.partition_point(|m| !item.lt(m)).saturating_sub(1)
}

impl<T: Ordered> Inner<T> {
    /// Re-reads child `i`'s count and minimum after it changed.
    fn refresh(&mut self, i: usize) {
        self.counts[i] = self.kids[i].count();
        self.mins[i] = self.kids[i].min();
    }

    /// Splits child `i` if it grew too big.
    fn fix_overfull(&mut self, i: usize) {
        if !self.kids[i].is_overfull() {
            return;
        }
        let right = self.kids[i].split();
        self.kids.insert(i + 1, right);
        self.counts.insert(i + 1, 0);
        self.mins.insert(i + 1, self.kids[i + 1].min());
        self.refresh(i);
        self.refresh(i + 1);
    }

    /// Merges an underfull child `i` with a neighbour, splitting the result
    /// again if it is too big (which amounts to borrowing).
    fn fix_underfull(&mut self, i: usize) {
        if self.kids.len() < 2 {
            return;
        }
        let left = if i + 1 < self.kids.len() { i } else { i - 1 };
        let right = self.kids.remove(left + 1);
        self.counts.remove(left + 1);
        self.mins.remove(left + 1);
        self.kids[left].absorb(right);
        self.refresh(left);
        self.fix_overfull(left);
    }
}

impl<T: Ordered> Tree<T> {
    pub fn new() -> Tree<T> {
        Tree {
            root: Node::Leaf(Vec::new()),
            len: 0,
        }
    }

    /// Builds a tree from items already in ascending order, its nodes
    /// filled evenly to three quarters.
    pub fn from_sorted(items: impl IntoIterator<Item = T>) -> Tree<T> {
        let items: Vec<T> = items.into_iter().collect();
        debug_assert!(items.windows(2).all(|w| w[0].lt(&w[1])));
        let len = items.len();
        let mut level: Vec<Node<T>> = even_chunks(items, BULK_FILL)
            .into_iter()
            .map(Node::Leaf)
            .collect();
        while level.len() > 1 {
            level = even_chunks(level, INNER_MAX * 3 / 4)
                .into_iter()
                .map(|kids| {
                    Node::Inner(Box::new(Inner {
                        counts: kids.iter().map(Node::count).collect(),
                        mins: kids.iter().map(Node::min).collect(),
                        kids,
                    }))
                })
                .collect();
        }
        Tree {
            root: level.pop().unwrap_or(Node::Leaf(Vec::new())),
            len,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inserts an item not already present.
    pub fn insert(&mut self, item: T) {
        fn go<T: Ordered>(node: &mut Node<T>, item: T) {
            match node {
                Node::Leaf(v) => {
                    let at = v.partition_point(|x| x.lt(&item));
                    v.insert(at, item);
                }
                Node::Inner(n) => {
                    let i = route(&n.mins, &item);
                    go(&mut n.kids[i], item);
                    n.counts[i] += 1;
                    n.mins[i] = n.kids[i].min();
                    n.fix_overfull(i);
                }
            }
        }
        go(&mut self.root, item);
        self.len += 1;
        if self.root.is_overfull() {
            let left = std::mem::replace(&mut self.root, Node::Leaf(Vec::new()));
            let mut inner = Inner {
                counts: vec![left.count()],
                mins: vec![left.min()],
                kids: vec![left],
            };
            inner.fix_overfull(0);
            self.root = Node::Inner(Box::new(inner));
        }
    }

    /// Removes the item equal to `item`; false if absent.
    pub fn remove(&mut self, item: &T) -> bool {
        fn go<T: Ordered>(node: &mut Node<T>, item: &T) -> bool {
            match node {
                Node::Leaf(v) => {
                    let at = v.partition_point(|x| x.lt(item));
                    if at < v.len() && !item.lt(&v[at]) {
                        v.remove(at);
                        true
                    } else {
                        false
                    }
                }
                Node::Inner(n) => {
                    let i = route(&n.mins, item);
                    if !go(&mut n.kids[i], item) {
                        return false;
                    }
                    n.counts[i] -= 1;
                    if n.kids[i].is_underfull() {
                        n.fix_underfull(i);
                    } else {
                        n.mins[i] = n.kids[i].min();
                    }
                    true
                }
            }
        }
        if !go(&mut self.root, item) {
            return false;
        }
        self.len -= 1;
        self.collapse_root();
        true
    }

    fn collapse_root(&mut self) {
        while let Node::Inner(n) = &mut self.root {
            if n.kids.len() != 1 {
                break;
            }
            self.root = n.kids.pop().expect("one child");
        }
    }

    /// How many leading items satisfy `pred`, which must hold for a prefix
    /// of the order and fail after it (e.g. "item < bound").
    pub fn count_while(&self, pred: impl Fn(&T) -> bool) -> usize {
        let mut node = &self.root;
        let mut acc = 0;
        loop {
            match node {
                Node::Leaf(v) => return acc + v.partition_point(&pred),
                Node::Inner(n) => {
                    let k = n.mins.partition_point(&pred);
                    if k == 0 {
                        return acc;
                    }
                    acc += n.counts[..k - 1].iter().sum::<usize>();
                    node = &n.kids[k - 1];
                }
            }
        }
    }

    /// The item at 0-based rank `r`.
    pub fn get(&self, mut r: usize) -> Option<T> {
        if r >= self.len {
            return None;
        }
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(v) => return v.get(r).copied(),
                Node::Inner(n) => {
                    let mut i = 0;
                    while r >= n.counts[i] {
                        r -= n.counts[i];
                        i += 1;
                    }
                    node = &n.kids[i];
                }
            }
        }
    }

    /// Calls `f` on the items with ranks in `start..end`, ascending, or
    /// descending when `rev`. Stops early when `f` returns false.
    pub fn visit(&self, start: usize, end: usize, rev: bool, mut f: impl FnMut(T) -> bool) {
        let end = end.min(self.len);
        if start >= end {
            return;
        }
        visit_node(&self.root, start, end, rev, &mut f);
    }

    /// Every item in order.
    pub fn iter(&self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len);
        self.visit(0, self.len, false, |t| {
            out.push(t);
            true
        });
        out
    }
}

/// Visits ranks `start..end` of `node` (relative to it); false if stopped.
fn visit_node<T: Ordered>(
    node: &Node<T>,
    start: usize,
    end: usize,
    rev: bool,
    f: &mut impl FnMut(T) -> bool,
) -> bool {
    match node {
        Node::Leaf(v) => {
            let span = &v[start..end];
            if rev {
                span.iter().rev().all(|t| f(*t))
            } else {
                span.iter().all(|t| f(*t))
            }
        }
        Node::Inner(n) => {
            // Find the child holding rank `start` and the one holding `end - 1`.
            let (mut first, mut base_first) = (0, 0);
            while base_first + n.counts[first] <= start {
                base_first += n.counts[first];
                first += 1;
            }
            let (mut last, mut base_last) = (first, base_first);
            while base_last + n.counts[last] < end {
                base_last += n.counts[last];
                last += 1;
            }
            let clip = |i: usize, base: usize| {
                let lo = start.max(base) - base;
                let hi = end.min(base + n.counts[i]) - base;
                (lo, hi)
            };
            if rev {
                let mut base = base_last;
                for i in (first..=last).rev() {
                    let (lo, hi) = clip(i, base);
                    if !visit_node(&n.kids[i], lo, hi, rev, f) {
                        return false;
                    }
                    if i > first {
                        base -= n.counts[i - 1];
                    }
                }
            } else {
                let mut base = base_first;
                for i in first..=last {
                    let (lo, hi) = clip(i, base);
                    if !visit_node(&n.kids[i], lo, hi, rev, f) {
                        return false;
                    }
                    base += n.counts[i];
                }
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    impl Ordered for (i64, u32) {
        fn lt(&self, o: &Self) -> bool {
            self < o
        }
    }

    fn check(t: &Tree<(i64, u32)>, model: &BTreeSet<(i64, u32)>) {
        let items: Vec<_> = model.iter().copied().collect();
        assert_eq!(t.len(), items.len());
        assert_eq!(t.iter(), items);
        fn depth_ok<T: Ordered>(n: &Node<T>, root: bool) -> usize {
            match n {
                Node::Leaf(v) => {
                    assert!(root || v.len() >= LEAF_MIN, "leaf underfull");
                    assert!(v.len() <= LEAF_MAX);
                    1
                }
                Node::Inner(i) => {
                    assert!(root || i.kids.len() >= INNER_MIN);
                    assert!(i.kids.len() <= INNER_MAX && i.kids.len() >= 2);
                    let d: Vec<usize> = i.kids.iter().map(|k| depth_ok(k, false)).collect();
                    assert!(d.iter().all(|x| *x == d[0]), "balanced");
                    for (k, kid) in i.kids.iter().enumerate() {
                        assert_eq!(i.counts[k], kid.count());
                        assert!(!i.mins[k].lt(&kid.min()) && !kid.min().lt(&i.mins[k]));
                    }
                    d[0] + 1
                }
            }
        }
        depth_ok(&t.root, true);
    }

    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn random_operations_match_a_sorted_model() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut t: Tree<(i64, u32)> = Tree::new();
        let mut model = BTreeSet::new();
        for round in 0..20_000 {
            let key = (
                (rng(&mut seed) % 200) as i64 - 100,
                (rng(&mut seed) % 50) as u32,
            );
            // Grow for a while, then shrink, so both splits and merges happen.
            let grow = (round / 5_000) % 2 == 0;
            if rng(&mut seed) % 10 < if grow { 7 } else { 3 } {
                if model.insert(key) {
                    t.insert(key);
                }
            } else {
                assert_eq!(t.remove(&key), model.remove(&key));
            }
            if round % 997 == 0 {
                check(&t, &model);
            }
            let probe = ((rng(&mut seed) % 220) as i64 - 110, 7);
            let rank = model.range(..probe).count();
            assert_eq!(t.count_while(|x| x < &probe), rank);
            if let Some(r) = (!model.is_empty()).then(|| rng(&mut seed) as usize % model.len()) {
                assert_eq!(t.get(r), model.iter().nth(r).copied());
            }
        }
        check(&t, &model);
    }

    #[test]
    fn deep_trees_split_and_merge_inner_nodes() {
        let mut seed = 77u64;
        let mut keys: Vec<(i64, u32)> = (0..30_000).map(|i| (i % 1000, i as u32)).collect();
        // Shuffle, insert all (three levels), then remove in another order.
        for i in (1..keys.len()).rev() {
            keys.swap(i, rng(&mut seed) as usize % (i + 1));
        }
        let mut t = Tree::new();
        let mut model = BTreeSet::new();
        for (n, k) in keys.iter().enumerate() {
            t.insert(*k);
            model.insert(*k);
            if n % 7919 == 0 {
                check(&t, &model);
            }
        }
        check(&t, &model);
        assert!(matches!(&t.root, Node::Inner(n) if matches!(n.kids[0], Node::Inner(_))));
        for i in (1..keys.len()).rev() {
            keys.swap(i, rng(&mut seed) as usize % (i + 1));
        }
        for (n, k) in keys.iter().enumerate() {
            assert!(t.remove(k));
            model.remove(k);
            if n % 7919 == 0 {
                check(&t, &model);
                let probe = (500, 0);
                assert_eq!(t.count_while(|x| x < &probe), model.range(..probe).count());
            }
        }
        check(&t, &model);
        assert!(t.is_empty());
    }

    #[test]
    fn visit_ranges_both_directions() {
        let items: Vec<(i64, u32)> = (0..5000).map(|i| (i, 0)).collect();
        let t = Tree::from_sorted(items.iter().copied());
        let model: BTreeSet<_> = items.iter().copied().collect();
        check(&t, &model);
        for (s, e) in [
            (0, 5000),
            (17, 4000),
            (4999, 5000),
            (100, 100),
            (3000, 9000),
        ] {
            let mut got = Vec::new();
            t.visit(s, e, false, |x| {
                got.push(x.0);
                true
            });
            let want: Vec<i64> = (s as i64..e.min(5000) as i64).collect();
            assert_eq!(got, want);
            let mut back = Vec::new();
            t.visit(s, e, true, |x| {
                back.push(x.0);
                back.len() < 10
            });
            let want: Vec<i64> = want.iter().rev().take(10).copied().collect();
            assert_eq!(back, want);
        }
    }

    #[test]
    fn bulk_build_sizes_are_valid_trees() {
        for n in [0, 1, 47, 48, 49, 100, 48 * 48, 48 * 48 + 1, 10_000] {
            let t = Tree::from_sorted((0..n as i64).map(|i| (i, 0u32)));
            let model: BTreeSet<_> = (0..n as i64).map(|i| (i, 0u32)).collect();
            check(&t, &model);
        }
    }
}
