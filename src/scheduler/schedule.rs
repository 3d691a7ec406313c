//! Tick arithmetic, pure so that it is unit-tested: when tick k is due,
//! and which ticks a stall made us miss.

use std::time::{Duration, Instant};

/// Drift-free ticks: tick k is due at start + k × length, whatever the
/// ticks before it cost; after a stall (a suspended machine) the ticks
/// already missed are skipped, not run back to back.
#[derive(Debug, Clone, Copy)]
pub(super) struct Schedule {
    start: Instant,
    length: Duration,
    /// The next tick to run.
    pub(super) tick: u64,
}

impl Schedule {
    pub(super) fn new(start: Instant, length: Duration) -> Schedule {
        Schedule {
            start,
            length,
            tick: 0,
        }
    }

    pub(super) fn due(&self) -> Instant {
        self.start + self.length.mul_f64(self.tick as f64)
    }

    /// Moves past the tick just run, at `now`; returns how many ticks
    /// were missed and skipped.
    pub(super) fn advance(&mut self, now: Instant) -> u64 {
        self.tick += 1;
        let elapsed = now.saturating_duration_since(self.start);
        let behind = (elapsed.as_secs_f64() / self.length.as_secs_f64()) as u64;
        if behind > self.tick {
            let missed = behind - self.tick + 1;
            self.tick = behind + 1;
            missed
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_k_is_due_at_start_plus_k_ticks_and_missed_ticks_are_skipped() {
        let t0 = Instant::now();
        let tick = Duration::from_millis(100);
        let mut s = Schedule::new(t0, tick);
        assert_eq!(s.due(), t0);
        // A slow tick does not push the next ones back.
        assert_eq!(s.advance(t0 + Duration::from_millis(90)), 0);
        assert_eq!(s.due(), t0 + tick);
        // After a stall of 1.05 s, ticks 2..=10 are skipped: the next is
        // the first one still in the future.
        assert_eq!(s.advance(t0 + Duration::from_millis(1050)), 9);
        assert_eq!(s.due(), t0 + tick * 11);
        assert!(s.due() > t0 + Duration::from_millis(1050));
    }
}
