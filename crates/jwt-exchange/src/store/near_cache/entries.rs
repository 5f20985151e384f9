//! The bounded table behind [`CachedStore`](super::CachedStore): sharded, CLOCK eviction.
//!
//! Each shard is a fixed number of slots swept by a clock hand: a hit sets the slot's
//! `referenced` bit; when a shard is full, the hand clears set bits until it finds a clear one
//! and evicts that entry (second-chance, an approximation of LRU with O(1) hits and amortised
//! O(1) inserts). The capacity is split over the shards, so the table never holds more than
//! `max_entries` sessions in total. Sessions are kept behind an `Arc`, so a hit clones a
//! pointer under the lock and the record outside it. Nothing here awaits.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use crate::session::{Session, SessionId};

/// Most shards of a table (fewer when `max_entries` is smaller).
const MAX_SHARDS: usize = 16;

/// One cached session.
struct Slot {
    session: Arc<Session>,
    /// When the record was read from (or written to) the store.
    cached_at: SystemTime,
    /// Set by a hit, cleared by the passing clock hand.
    referenced: bool,
}

/// What [`Entries::lookup`] found.
pub(super) enum Lookup {
    /// A live entry younger than the maximum age.
    Hit(Arc<Session>),
    /// Nothing cached under the id.
    Miss,
    /// The cached session has expired (the entry was dropped).
    Expired,
    /// The entry was older than the maximum age (it was dropped).
    TooOld,
}

#[derive(Default)]
struct Shard {
    slots: Vec<Option<Slot>>,
    index: HashMap<SessionId, usize>,
    free: Vec<usize>,
    hand: usize,
    capacity: usize,
}

impl Shard {
    fn remove_at(&mut self, i: usize) -> Option<Slot> {
        let slot = self.slots[i].take()?;
        self.index.remove(&slot.session.id);
        self.free.push(i);
        Some(slot)
    }

    /// Inserts or replaces; returns whether another entry was evicted to make room.
    fn insert(&mut self, session: Arc<Session>, cached_at: SystemTime) -> bool {
        let slot = Slot {
            session,
            cached_at,
            referenced: false,
        };
        if let Some(&i) = self.index.get(&slot.session.id) {
            self.slots[i] = Some(slot);
            return false;
        }
        let id = slot.session.id.clone();
        let (i, evicted) = if let Some(i) = self.free.pop() {
            (i, false)
        } else if self.slots.len() < self.capacity {
            self.slots.push(None);
            (self.slots.len() - 1, false)
        } else {
            (self.evict(), true)
        };
        self.slots[i] = Some(slot);
        self.index.insert(id, i);
        evicted
    }

    /// Frees the slot under the clock hand that was not referenced since the hand last passed;
    /// only called when every slot is occupied.
    fn evict(&mut self) -> usize {
        loop {
            let i = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            match &mut self.slots[i] {
                Some(slot) if slot.referenced => slot.referenced = false,
                _ => {
                    if let Some(slot) = self.slots[i].take() {
                        self.index.remove(&slot.session.id);
                    }
                    return i;
                }
            }
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&Slot) -> bool) -> usize {
        let doomed: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().filter(|s| !keep(s)).map(|_| i))
            .collect();
        for &i in &doomed {
            self.remove_at(i);
        }
        doomed.len()
    }

    fn clear(&mut self) -> usize {
        let n = self.index.len();
        self.slots.clear();
        self.index.clear();
        self.free.clear();
        self.hand = 0;
        n
    }
}

/// A bounded id → session table.
pub(super) struct Entries {
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
}

impl Entries {
    /// A table holding at most `max_entries` sessions (0: nothing is ever cached).
    pub(super) fn new(max_entries: usize) -> Self {
        let n = max_entries.clamp(1, MAX_SHARDS);
        let shards = (0..n)
            .map(|i| {
                Mutex::new(Shard {
                    capacity: max_entries / n + usize::from(i < max_entries % n),
                    ..Shard::default()
                })
            })
            .collect();
        Entries {
            hasher: RandomState::new(),
            shards,
        }
    }

    fn shard(&self, id: &SessionId) -> MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(id.as_str()) as usize) % self.shards.len();
        lock(&self.shards[i])
    }

    /// The entry for `id`, if it is live at `now` and younger than `max_age`; expired and
    /// too-old entries are dropped on the way.
    pub(super) fn lookup(&self, id: &SessionId, now: SystemTime, max_age: Duration) -> Lookup {
        let mut shard = self.shard(id);
        let Some(&i) = shard.index.get(id) else {
            return Lookup::Miss;
        };
        let Some(slot) = shard.slots[i].as_mut() else {
            return Lookup::Miss;
        };
        let verdict = if slot.session.is_expired(crate::clock::unix_seconds(now)) {
            Lookup::Expired
        } else if now.duration_since(slot.cached_at).unwrap_or_default() >= max_age {
            Lookup::TooOld
        } else {
            slot.referenced = true;
            return Lookup::Hit(Arc::clone(&slot.session));
        };
        shard.remove_at(i);
        verdict
    }

    /// Caches `session` (read from the store at `cached_at`) if `still_valid()`, which is
    /// evaluated under the shard's lock: an invalidation that removes entries after changing
    /// what `still_valid` sees can therefore never be overtaken by this insert. Returns
    /// `Some(evicted)` when inserted.
    pub(super) fn insert_if(
        &self,
        session: Arc<Session>,
        cached_at: SystemTime,
        still_valid: impl FnOnce() -> bool,
    ) -> Option<bool> {
        let mut shard = self.shard(&session.id);
        if shard.capacity == 0 || !still_valid() {
            return None;
        }
        Some(shard.insert(session, cached_at))
    }

    /// Drops the entry for `id`; whether there was one.
    pub(super) fn remove(&self, id: &SessionId) -> bool {
        let mut shard = self.shard(id);
        match shard.index.get(id) {
            Some(&i) => shard.remove_at(i).is_some(),
            None => false,
        }
    }

    /// Drops every entry of `subject` (a scan: subject revocations are rare); how many.
    pub(super) fn remove_subject(&self, subject: &str) -> usize {
        self.shards
            .iter()
            .map(|s| lock(s).retain(|slot| slot.session.subject != subject))
            .sum()
    }

    /// Drops every entry whose session has expired at `now` (Unix seconds); how many.
    pub(super) fn remove_expired(&self, now: i64) -> usize {
        self.shards
            .iter()
            .map(|s| lock(s).retain(|slot| !slot.session.is_expired(now)))
            .sum()
    }

    /// Drops everything; how many entries there were.
    pub(super) fn clear(&self) -> usize {
        self.shards.iter().map(|s| lock(s).clear()).sum()
    }

    /// Number of cached sessions.
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).index.len()).sum()
    }
}

/// Locks a shard; a panic while holding it cannot leave a shard inconsistent in a way that
/// matters for a cache (at worst an entry is missing), so poisoning is ignored.
fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000;

    fn at(secs: i64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    }

    fn session(ttl: i64) -> Arc<Session> {
        Arc::new(Session::new(
            SessionId::generate(),
            "https://idp",
            "alice",
            T0,
            T0 + ttl,
        ))
    }

    fn hit(e: &Entries, id: &SessionId) -> bool {
        matches!(
            e.lookup(id, at(T0), Duration::from_secs(60)),
            Lookup::Hit(_)
        )
    }

    #[test]
    fn capacity_is_split_exactly() {
        for max in [0, 1, 3, 15, 16, 17, 100, 10_000] {
            let e = Entries::new(max);
            let total: usize = e.shards.iter().map(|s| lock(s).capacity).sum();
            assert_eq!(total, max, "{max}");
        }
    }

    #[test]
    fn never_holds_more_than_max_entries() {
        for max in [1, 5, 40] {
            let e = Entries::new(max);
            for _ in 0..max * 20 {
                e.insert_if(session(60), at(T0), || true);
                assert!(e.len() <= max);
            }
            // Every shard filled up (ids are uniform).
            assert!(e.len() >= max * 3 / 4, "{} of {max}", e.len());
        }
        let none = Entries::new(0);
        assert_eq!(none.insert_if(session(60), at(T0), || true), None);
        assert_eq!(none.len(), 0);
    }

    /// A table with a single shard of `capacity` slots.
    fn one_shard(capacity: usize) -> Entries {
        Entries {
            hasher: RandomState::new(),
            shards: vec![Mutex::new(Shard {
                capacity,
                ..Shard::default()
            })]
            .into_boxed_slice(),
        }
    }

    #[test]
    fn clock_eviction_spares_recently_used_entries() {
        let e = one_shard(4);
        let s: Vec<_> = (0..4).map(|_| session(60)).collect();
        for x in &s {
            assert_eq!(e.insert_if(Arc::clone(x), at(T0), || true), Some(false));
        }
        // Use 0 and 2; inserting two more evicts 1 and 3.
        assert!(hit(&e, &s[0].id) && hit(&e, &s[2].id));
        let n1 = session(60);
        let n2 = session(60);
        assert_eq!(e.insert_if(Arc::clone(&n1), at(T0), || true), Some(true));
        assert_eq!(e.insert_if(Arc::clone(&n2), at(T0), || true), Some(true));
        assert!(hit(&e, &s[0].id) && hit(&e, &s[2].id));
        assert!(!hit(&e, &s[1].id) && !hit(&e, &s[3].id));
        assert!(hit(&e, &n1.id) && hit(&e, &n2.id));
        assert_eq!(e.len(), 4);
    }

    #[test]
    fn expired_and_old_entries_are_dropped_on_lookup() {
        // Room for both in any shard (with 10, one slot per shard, they could evict each other).
        let e = Entries::new(64);
        let short = session(5);
        let long = session(600);
        e.insert_if(Arc::clone(&short), at(T0), || true);
        e.insert_if(Arc::clone(&long), at(T0), || true);
        let max_age = Duration::from_secs(60);
        assert!(matches!(
            e.lookup(&short.id, at(T0 + 4), max_age),
            Lookup::Hit(_)
        ));
        assert!(matches!(
            e.lookup(&short.id, at(T0 + 5), max_age),
            Lookup::Expired
        ));
        assert!(matches!(
            e.lookup(&short.id, at(T0 + 5), max_age),
            Lookup::Miss
        ));
        assert!(matches!(
            e.lookup(&long.id, at(T0 + 59), max_age),
            Lookup::Hit(_)
        ));
        assert!(matches!(
            e.lookup(&long.id, at(T0 + 60), max_age),
            Lookup::TooOld
        ));
        assert_eq!(e.len(), 0);
    }

    #[test]
    fn removal_by_id_subject_expiry_and_clear() {
        let e = Entries::new(100);
        let mine: Vec<_> = (0..10).map(|_| session(60)).collect();
        let other = Arc::new(Session::new(
            SessionId::generate(),
            "https://idp",
            "bob",
            T0,
            T0 + 10,
        ));
        for s in mine.iter().chain([&other]) {
            e.insert_if(Arc::clone(s), at(T0), || true);
        }
        assert!(e.remove(&mine[0].id));
        assert!(!e.remove(&mine[0].id));
        assert_eq!(e.remove_subject(&mine[1].subject), 9);
        assert_eq!(e.len(), 1);
        assert_eq!(e.remove_expired(T0 + 9), 0);
        assert_eq!(e.remove_expired(T0 + 10), 1);
        e.insert_if(session(60), at(T0), || true);
        assert_eq!(e.clear(), 1);
        assert_eq!(e.len(), 0);
        // Freed slots are reused: a full shard stays full without evicting.
        let one = one_shard(8);
        let s: Vec<_> = (0..8).map(|_| session(60)).collect();
        for x in &s {
            one.insert_if(Arc::clone(x), at(T0), || true);
        }
        assert!(one.remove(&s[3].id));
        assert_eq!(one.insert_if(session(60), at(T0), || true), Some(false));
        assert_eq!(one.len(), 8);
        assert_eq!(one.insert_if(session(60), at(T0), || true), Some(true));
        assert_eq!(one.len(), 8);
    }

    #[test]
    fn insert_respects_the_guard_and_replaces() {
        let e = Entries::new(10);
        let s = session(60);
        assert_eq!(e.insert_if(Arc::clone(&s), at(T0), || false), None);
        assert_eq!(e.len(), 0);
        e.insert_if(Arc::clone(&s), at(T0), || true);
        let mut newer = (*s).clone();
        newer.groups = vec!["g".into()];
        e.insert_if(Arc::new(newer.clone()), at(T0), || true);
        assert_eq!(e.len(), 1);
        match e.lookup(&s.id, at(T0), Duration::from_secs(60)) {
            Lookup::Hit(got) => assert_eq!(*got, newer),
            _ => panic!("expected a hit"),
        }
    }
}
