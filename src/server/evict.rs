//! `maxmemory`: before each command (and from the cron) keys are evicted
//! by `maxmemory-policy` until the memory the process holds is back under
//! the limit; commands that may grow memory are refused while it cannot be.
//!
//! Design decisions:
//! - One evictor at a time (a mutex around the candidate pool), as in
//!   Redis's single thread; a command waiting for it re-checks the memory
//!   afterwards and usually finds nothing left to do.
//! - The work per call is bounded by `maxmemory-eviction-tenacity`'s time
//!   budget; past it the command runs anyway and the cron (or the next
//!   command) goes on evicting, as Redis's eviction timer does.
//! - With an LFU policy the entries' access field holds Redis's LFU data
//!   (minute clock and logarithmic counter, see `store::evict`); the
//!   switch happens when the policy is set, and existing keys' fields are
//!   reinterpreted, as in Redis.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Server;
use super::client::Client;
use crate::alloc::used_memory;
use crate::cmd::{Command, flags};
use crate::store::evict::Candidate;
use crate::store::{Entry, Keyspace, Object, ValueRef};

/// The reply to a command refused for memory.
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// `maxmemory-policy`, in the order of [`crate::config::MAXMEMORY_POLICIES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    NoEviction,
}

impl Policy {
    pub fn from_index(i: usize) -> Policy {
        use Policy::*;
        [
            VolatileLru,
            VolatileLfu,
            VolatileRandom,
            VolatileTtl,
            AllkeysLru,
            AllkeysLfu,
            AllkeysRandom,
        ]
        .get(i)
        .copied()
        .unwrap_or(NoEviction)
    }

    /// Only keys with a deadline may go.
    pub fn volatile(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }

    fn random(self) -> bool {
        matches!(self, Policy::VolatileRandom | Policy::AllkeysRandom)
    }

    pub fn lfu(self) -> bool {
        matches!(self, Policy::VolatileLfu | Policy::AllkeysLfu)
    }
}

/// Makes the store track frequency or time as the policy needs (start-up,
/// CONFIG SET, and the cron as a backstop).
pub fn sync_access_tracking(srv: &Server) {
    let c = &srv.config;
    let lfu = Policy::from_index(c.maxmemory_policy.get()).lfu();
    let clamp = |v: i64| v.clamp(0, u32::MAX as i64) as u32;
    crate::store::evict::set_lfu(
        lfu,
        clamp(c.lfu_log_factor.get()),
        clamp(c.lfu_decay_time.get()),
    );
}

/// How one round of eviction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Under the limit (or no limit).
    Ok,
    /// Still over, but the time budget ran out while keys were going:
    /// commands are allowed, eviction goes on later.
    Running,
    /// Over the limit with nothing left to evict.
    Fail,
}

/// Candidates kept between calls, best (highest score) last.
const POOL_SIZE: usize = 16;
/// How long the list of databases with evictable keys is trusted.
const LIVE_DBS_TTL: Duration = Duration::from_millis(100);
/// Samples per database per round, whatever maxmemory-samples says.
const MAX_SAMPLES: usize = 1024;

struct Evictor {
    pool: Vec<Candidate>,
    /// The policy the pool's scores were computed for.
    pool_policy: Option<Policy>,
    /// Databases that had evictable keys when last looked at, and for
    /// which kind of policy (volatile or not).
    live: Vec<usize>,
    live_at: Option<(Instant, bool)>,
    /// Round-robin start for the random policies.
    next_db: usize,
    rng: u64,
}

static EVICTOR: Mutex<Evictor> = parking_lot::const_mutex(Evictor {
    pool: Vec::new(),
    pool_policy: None,
    live: Vec::new(),
    live_at: None,
    next_db: 0,
    rng: 0,
});

thread_local! {
    /// Whether memory was over the limit (with nothing evictable) when the
    /// command running on this thread started: scripts refuse their first
    /// write then.
    static OOM_AT_START: Cell<bool> = const { Cell::new(false) };
}

static PEAK: AtomicU64 = AtomicU64::new(0);

/// Records `used` as a candidate peak and returns the peak.
pub fn note_peak(used: u64) -> u64 {
    PEAK.fetch_max(used, Ordering::Relaxed).max(used)
}

/// The microseconds one call may spend evicting (Redis's curve: linear up
/// to tenacity 10, then +15% per step; 100 means no limit).
fn time_limit(tenacity: i64) -> Option<Duration> {
    let t = tenacity.max(0);
    if t <= 10 {
        Some(Duration::from_micros(50 * t as u64))
    } else if t < 100 {
        Some(Duration::from_micros(
            (500.0 * 1.15f64.powi((t - 10) as i32)) as u64,
        ))
    } else {
        None
    }
}

/// The check the dispatcher makes before a command: evicts as needed and
/// says whether the command must be refused with [`OOM_ERROR`].
pub fn rejects(srv: &Server, client: &Client, cmd: &Command) -> bool {
    // Clients over `maxmemory-clients` go before any key, as in Redis.
    crate::server::client_mem::check(srv);
    let oom = srv.config.maxmemory.get() > 0 && perform(srv) == Outcome::Fail;
    OOM_AT_START.with(|c| c.set(oom));
    oom && denied_when_oom(client, cmd)
}

/// Carries [`rejects`]'s finding to the thread that runs the command (the
/// script thread).
pub fn set_oom_at_command_start(oom: bool) {
    OOM_AT_START.with(|c| c.set(oom));
}

/// Was memory over the limit, with nothing evictable, when the command
/// now running on this thread started?
pub fn oom_at_command_start() -> bool {
    OOM_AT_START.with(Cell::get)
}

/// Commands that may grow memory: `denyoom` ones, an EXEC whose queue has
/// one, and anything queued inside MULTI (the queue itself grows).
fn denied_when_oom(client: &Client, cmd: &Command) -> bool {
    if cmd.has(flags::DENYOOM) {
        return true;
    }
    match &client.multi {
        Some(q) if cmd.name == "exec" => q.has_flag(flags::DENYOOM),
        Some(_) => !matches!(cmd.name, "discard" | "quit" | "reset"),
        None => false,
    }
}

/// Evicts keys until memory is under `maxmemory` or the time budget is
/// spent.
pub fn perform(srv: &Server) -> Outcome {
    let limit = srv.config.maxmemory.get();
    if limit <= 0 || crate::alloc::used_memory_near(limit as u64) <= limit as u64 {
        return Outcome::Ok;
    }
    let limit = limit as u64;
    let policy = Policy::from_index(srv.config.maxmemory_policy.get());
    if policy == Policy::NoEviction {
        return Outcome::Fail;
    }
    let mut ev = EVICTOR.lock();
    let started = Instant::now();
    let budget = time_limit(srv.config.maxmemory_eviction_tenacity.get());
    // Waits for the lazy-free thread are bounded even without a budget.
    let deadline = started + budget.unwrap_or(Duration::from_millis(100));
    let samples = (srv.config.maxmemory_samples.get().max(1) as usize).min(MAX_SAMPLES);
    let lazy = srv.config.lazyfree_lazy_eviction.get();
    let mut evicted = 0u64;
    // What evicting itself appends to clients' outboxes (invalidations of
    // tracked keys, `evicted` events) is not memory this run must free:
    // counting it would evict on and on (Redis measures only what each
    // deletion frees). Later runs see it, once clients have not read it.
    let appended_at_start = crate::server::client_mem::appended_so_far();
    // Replication buffers (replicas' output, the backlog) are not what
    // eviction is for, as in Redis: evicting would only feed them more.
    // Nor what clients being closed still hold (`client_mem::closing`).
    let not_counted = not_counted_for_evict(srv) + crate::server::client_mem::closing(srv);
    // The cheap figure misses other threads' unfolded change (up to 64 KiB
    // each: a replica's connection freeing what the writers allocated for
    // it keeps its frees unfolded), which could evict keys while memory is
    // under the limit: measured once, exactly, and carried through this
    // run, where this thread's own frees show in the cheap figure at once.
    let others = crate::alloc::exact_used_memory() as i64 - used_memory() as i64;
    let used = || {
        let ours = crate::server::client_mem::appended_so_far() - appended_at_start;
        let now = (used_memory() as i64 + others).max(0) as u64;
        now.saturating_sub(ours + not_counted)
    };
    while used() > limit {
        // Memory already on its way out: give the freeing thread the rest
        // of the budget, and rather than take more keys than needed, let
        // the command run while it catches up.
        if lazy && LAZY_PENDING.load(Ordering::Acquire) > 0 {
            if wait_lazy_free(limit, deadline) {
                break;
            }
            if LAZY_PENDING.load(Ordering::Acquire) > 0 {
                return Outcome::Running;
            }
        }
        let Some(entry) = ev.evict_one(&srv.ks, policy, samples) else {
            // Out of keys; what the freeing thread holds may still do.
            return if wait_lazy_free(limit, deadline) || used_memory() <= limit {
                Outcome::Ok
            } else if !ev.live.is_empty() {
                // Keys sit in shards held right now (a running script or
                // transaction): never wait for those, let the command run.
                Outcome::Running
            } else {
                Outcome::Fail
            };
        };
        free(entry, lazy);
        evicted += 1;
        if evicted.is_multiple_of(16) && budget.is_some_and(|b| started.elapsed() > b) {
            return if used_memory() > limit {
                Outcome::Running
            } else {
                Outcome::Ok
            };
        }
    }
    Outcome::Ok
}

/// Bytes eviction leaves out of used memory (INFO memory
/// `mem_not_counted_for_evict`): what replicas have not read yet and the
/// replication backlog.
pub fn not_counted_for_evict(srv: &Server) -> u64 {
    let replicas = crate::server::repl::output_bytes() as u64
        + crate::server::client_mem::replica_buffers(srv);
    replicas + crate::server::repl::backlog_info().2 as u64
}

/// Objects handed to the lazy-free thread and not freed yet.
static LAZY_PENDING: AtomicUsize = AtomicUsize::new(0);
/// Objects the lazy-free thread freed.
static LAZY_FREED: AtomicU64 = AtomicU64::new(0);

/// INFO memory `lazyfree_pending_objects`.
pub fn lazyfree_pending() -> usize {
    LAZY_PENDING.load(Ordering::Relaxed)
}

/// INFO memory `lazyfreed_objects`.
pub fn lazyfreed() -> u64 {
    LAZY_FREED.load(Ordering::Relaxed)
}

/// CONFIG RESETSTAT.
pub fn reset_lazyfreed() {
    LAZY_FREED.store(0, Ordering::Relaxed);
}

/// While lazily freed objects are pending, waits (until `deadline`) for
/// memory to come under `limit`; true once it has.
fn wait_lazy_free(limit: u64, deadline: Instant) -> bool {
    loop {
        if used_memory() <= limit {
            return true;
        }
        let now = Instant::now();
        if LAZY_PENDING.load(Ordering::Acquire) == 0 || now >= deadline {
            return false;
        }
        std::thread::sleep((deadline - now).min(Duration::from_micros(100)));
    }
}

/// The cron's part: tracks the peak and goes on evicting while over.
pub fn cron(srv: &Server) {
    sync_access_tracking(srv);
    note_peak(used_memory());
    perform(srv);
}

impl Evictor {
    fn rand(&mut self) -> u64 {
        if self.rng == 0 {
            self.rng = crate::util::rand::seed() | 1;
        }
        crate::util::rand::next(&mut self.rng)
    }

    /// Refreshes the databases worth sampling when the list is old, was
    /// made for the other kind of policy, or `force`.
    fn refresh_live(&mut self, ks: &Keyspace, volatile: bool, force: bool) {
        let fresh =
            matches!(self.live_at, Some((at, v)) if v == volatile && at.elapsed() < LIVE_DBS_TTL);
        if fresh && !force {
            return;
        }
        self.live = (0..ks.db_count())
            .filter(|&db| ks.has_evictable(db, volatile))
            .collect();
        self.live_at = Some((Instant::now(), volatile));
    }

    /// Removes one key by `policy`; None when there is none to take.
    fn evict_one(&mut self, ks: &Keyspace, policy: Policy, samples: usize) -> Option<Entry> {
        let volatile = policy.volatile();
        self.refresh_live(ks, volatile, false);
        for attempt in 0..2 {
            if attempt > 0 {
                self.refresh_live(ks, volatile, true);
            }
            if self.live.is_empty() {
                return None;
            }
            let got = if policy.random() {
                self.evict_random(ks, volatile)
            } else {
                self.evict_best(ks, policy, samples)
            };
            if got.is_some() {
                return got;
            }
        }
        None
    }

    fn evict_random(&mut self, ks: &Keyspace, volatile: bool) -> Option<Entry> {
        for _ in 0..self.live.len() {
            let db = self.live[self.next_db % self.live.len()];
            self.next_db = self.next_db.wrapping_add(1);
            let mut rng = self.rng;
            let got = ks.evict_random(db, volatile, &mut || crate::util::rand::next(&mut rng));
            self.rng = rng;
            if got.is_some() {
                return got;
            }
        }
        None
    }

    /// Samples every live database into the pool, then evicts the best
    /// candidate still present.
    fn evict_best(&mut self, ks: &Keyspace, policy: Policy, samples: usize) -> Option<Entry> {
        if self.pool_policy != Some(policy) {
            self.pool.clear();
            self.pool_policy = Some(policy);
        }
        let volatile = policy.volatile();
        let now_ms = super::now_ms();
        let now_s = (now_ms / 1000) as u32;
        let mut fresh = Vec::with_capacity(samples * self.live.len());
        self.rand();
        let mut rng = self.rng;
        let mut rnd = || crate::util::rand::next(&mut rng);
        for &db in &self.live {
            ks.evict_sample(
                db,
                samples,
                volatile,
                &mut rnd,
                |e| match policy {
                    Policy::VolatileTtl => u64::MAX - e.expire().unwrap_or(i64::MAX).max(0) as u64,
                    Policy::VolatileLfu | Policy::AllkeysLfu => {
                        255 - crate::store::evict::lfu_counter(e.lru(), now_ms) as u64
                    }
                    _ => now_s.saturating_sub(e.lru()) as u64,
                },
                &mut fresh,
            );
        }
        self.rng = rng;
        for c in fresh {
            pool_insert(&mut self.pool, c);
        }
        while let Some(c) = self.pool.pop() {
            if let Some(e) = ks.evict_key(c.db, &c.key, volatile) {
                return Some(e);
            }
        }
        None
    }
}

/// Adds `c` to the pool (sorted by score, ascending), keeping the best
/// [`POOL_SIZE`]; a key already there gets its new score.
fn pool_insert(pool: &mut Vec<Candidate>, c: Candidate) {
    if let Some(i) = pool.iter().position(|p| p.db == c.db && p.key == c.key) {
        pool.remove(i);
    }
    if pool.len() >= POOL_SIZE && pool.first().is_some_and(|p| p.score >= c.score) {
        return;
    }
    let at = pool.partition_point(|p| p.score <= c.score);
    pool.insert(at, c);
    if pool.len() > POOL_SIZE {
        pool.remove(0);
    }
}

/// Frees an evicted entry: on the lazy-free thread if asked to and it is
/// a big collection, here otherwise.
fn free(entry: Entry, lazy: bool) {
    let big = matches!(entry.value(), ValueRef::Obj(o) if !matches!(o, Object::Str(_)));
    if lazy && big {
        lazy_free(entry);
    }
}

/// Above this much [`Object::free_effort`], a value UNLINK removes is
/// freed on the lazy-free thread (Redis's threshold).
const LAZYFREE_THRESHOLD: usize = 64;

/// Frees a value UNLINK (or DEL under `lazyfree-lazy-user-del`) removed:
/// a big one on the lazy-free thread (counted in `lazyfreed_objects`), a
/// small one here, where that costs less than the hand-off.
pub fn free_unlinked(entry: Entry) {
    let effort = match entry.value() {
        ValueRef::Obj(o) => o.free_effort(),
        _ => 1,
    };
    if effort > LAZYFREE_THRESHOLD {
        lazy_free(entry);
    }
}

fn lazy_free(entry: Entry) {
    static TX: OnceLock<Sender<Entry>> = OnceLock::new();
    let tx = TX.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Entry>();
        std::thread::Builder::new()
            .name("ferrokv-lazyfree".into())
            .spawn(move || {
                for e in rx {
                    drop(e);
                    crate::alloc::flush_thread();
                    LAZY_FREED.fetch_add(1, Ordering::Relaxed);
                    LAZY_PENDING.fetch_sub(1, Ordering::AcqRel);
                }
            })
            .expect("lazy-free thread");
        tx
    });
    LAZY_PENDING.fetch_add(1, Ordering::AcqRel);
    if let Err(e) = tx.send(entry) {
        drop(e.0);
        LAZY_PENDING.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(key: &str, score: u64) -> Candidate {
        Candidate {
            db: 0,
            key: key.as_bytes().into(),
            score,
        }
    }

    #[test]
    fn the_pool_keeps_the_best_sixteen_sorted_and_unique() {
        let mut pool = Vec::new();
        for i in 0..40u64 {
            pool_insert(&mut pool, cand(&format!("k{i}"), (i * 7) % 40));
        }
        assert_eq!(pool.len(), POOL_SIZE);
        assert!(pool.windows(2).all(|w| w[0].score <= w[1].score));
        assert_eq!(pool.first().unwrap().score, 24);
        assert_eq!(pool.last().unwrap().score, 39);
        pool_insert(&mut pool, cand("k0", 100));
        assert_eq!(pool.len(), POOL_SIZE);
        assert_eq!(&*pool.last().unwrap().key, b"k0");
        assert_eq!(pool.iter().filter(|c| &*c.key == b"k0").count(), 1);
    }

    #[test]
    fn policies_follow_the_config_order() {
        for (i, name) in crate::config::MAXMEMORY_POLICIES.iter().enumerate() {
            let p = Policy::from_index(i);
            assert_eq!(p.volatile(), name.starts_with("volatile"), "{name}");
            assert_eq!(p.random(), name.ends_with("random"), "{name}");
            assert_eq!(p == Policy::NoEviction, *name == "noeviction");
        }
    }

    #[test]
    fn tenacity_budget_follows_redis_curve() {
        assert_eq!(time_limit(0), Some(Duration::ZERO));
        assert_eq!(time_limit(10), Some(Duration::from_micros(500)));
        assert_eq!(time_limit(11), Some(Duration::from_micros(575)));
        assert_eq!(time_limit(100), None);
    }
}
