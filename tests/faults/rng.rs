//! The seeded random numbers that place the kills: SplitMix64, a few
//! lines, so that a run can be repeated from the seed it prints
//! (`FAULTS_SEED=N`) without a crate for it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct Rng(u64);

impl Rng {
    /// From `FAULTS_SEED` if set, else from the clock; the seed is printed
    /// so that a failure can be replayed.
    #[track_caller]
    pub fn seeded(what: &str) -> Rng {
        let seed = match std::env::var("FAULTS_SEED") {
            Ok(s) => s
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("FAULTS_SEED={s:?}: not a number: {e}")),
            Err(_) => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64,
        };
        println!("{what}: FAULTS_SEED={seed}");
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..high` (`low` when the range is empty).
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        match high.checked_sub(low) {
            Some(span) if span > 0 => low + self.next() % span,
            _ => low,
        }
    }

    /// A duration of up to `max_ms` milliseconds.
    pub fn millis(&mut self, max_ms: u64) -> Duration {
        Duration::from_millis(self.between(0, max_ms + 1))
    }
}

#[test]
fn the_same_seed_gives_the_same_kills() {
    let (mut a, mut b) = (Rng(7), Rng(7));
    let xs: Vec<u64> = (0..5).map(|_| a.between(3, 9)).collect();
    let ys: Vec<u64> = (0..5).map(|_| b.between(3, 9)).collect();
    assert_eq!(xs, ys);
    assert!(xs.iter().all(|x| (3..9).contains(x)), "{xs:?}");
    assert_eq!(a.between(4, 4), 4);
}
