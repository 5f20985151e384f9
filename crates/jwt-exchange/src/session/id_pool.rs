//! A per-thread pool of CSPRNG output for session ids.
//!
//! AWS-LC's `RAND_bytes` has a fixed cost per call (it mixes fresh entropy into its DRBG state
//! on every call) that dwarfs the cost per byte: ~0.6 µs for 32 bytes, ~0.6 µs for 1 KiB on
//! the bench machine. Drawing [`POOL_BYTES`] at once and handing out [`super::ID_BYTES`] at a
//! time keeps every id a fresh, never-reused slice of CSPRNG output while paying that cost once
//! per [`IDS_PER_DRAW`] ids. Bytes are zeroed in the pool as they are handed out, so the pool
//! never holds an id that was already issued.

use std::cell::RefCell;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use super::ID_BYTES;

/// Ids per `RAND_bytes` call.
const IDS_PER_DRAW: usize = 32;
/// Bytes per `RAND_bytes` call.
const POOL_BYTES: usize = ID_BYTES * IDS_PER_DRAW;

struct Pool {
    bytes: [u8; POOL_BYTES],
    /// Bytes before this offset were handed out (and zeroed).
    next: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { bytes: [0; POOL_BYTES], next: POOL_BYTES })
    };
}

/// 32 fresh bytes from the system CSPRNG, never handed out before.
///
/// # Panics
///
/// If the CSPRNG fails.
pub(super) fn draw() -> [u8; ID_BYTES] {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.next == POOL_BYTES {
            SystemRandom::new()
                .fill(&mut pool.bytes)
                .expect("system random number generator failed");
            pool.next = 0;
        }
        let at = pool.next;
        let mut out = [0u8; ID_BYTES];
        let slot = &mut pool.bytes[at..at + ID_BYTES];
        out.copy_from_slice(slot);
        slot.fill(0);
        pool.next = at + ID_BYTES;
        out
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn draws_are_distinct_across_refills_and_threads() {
        let mine: Vec<[u8; ID_BYTES]> = (0..=IDS_PER_DRAW * 3).map(|_| draw()).collect();
        let theirs: Vec<[u8; ID_BYTES]> =
            std::thread::spawn(|| (0..IDS_PER_DRAW * 2).map(|_| draw()).collect::<Vec<_>>())
                .join()
                .unwrap();
        let all: HashSet<[u8; ID_BYTES]> = mine.iter().chain(&theirs).copied().collect();
        assert_eq!(all.len(), mine.len() + theirs.len());
        assert!(all.iter().all(|b| b.iter().any(|x| *x != 0)));
    }

    #[test]
    fn handed_out_bytes_are_wiped_from_the_pool() {
        let _ = draw();
        POOL.with(|pool| {
            let pool = pool.borrow();
            assert!(pool.next > 0);
            assert!(pool.bytes[..pool.next].iter().all(|b| *b == 0));
        });
    }
}
