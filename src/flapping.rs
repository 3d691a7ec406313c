//! Flapping: an instance that switched more than `flap_switches` times
//! within its last `flap_window` runs sends one "flapping" mail and then
//! no switch mails, until it has gone a whole window without switching;
//! then one mail says where it settled. A pure decision per run: whether
//! the run switched in, the news (if any) out; the history is one bit per
//! run, so it costs nothing to keep and to save.

use serde::{Deserialize, Serialize};

/// The longest window: one bit per run in a `u64`.
pub(crate) const MAX_WINDOW: u32 = 64;

/// When an instance counts as flapping (`flap_switches`, `flap_window`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// More switches than this within the window is flapping; 0: never.
    pub switches: u32,
    /// Runs looked at, 1 to `MAX_WINDOW`.
    pub window: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            switches: 4,
            window: 10,
        }
    }
}

/// An instance's recent switches and whether it is flapping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Flap {
    /// One bit per run, the newest lowest: set where the run switched.
    pub recent: u64,
    /// From the flapping mail to the settled one: no switch mails.
    pub flapping: bool,
}

/// What a run changed about flapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum News {
    /// It just started flapping: one mail says so.
    Started,
    /// A whole window without a switch: one mail says where it settled.
    Settled,
}

impl Flap {
    /// Nothing worth saving.
    pub fn is_quiet(&self) -> bool {
        *self == Flap::default()
    }

    /// Records a run that `switched` (or not) and tells what changed.
    pub fn observe(&mut self, switched: bool, limits: Limits) -> Option<News> {
        self.recent = (self.recent << 1) | u64::from(switched);
        let window = limits.window.clamp(1, MAX_WINDOW);
        let mask = match window {
            MAX_WINDOW => u64::MAX,
            w => (1u64 << w) - 1,
        };
        let switches = (self.recent & mask).count_ones();
        if !self.flapping {
            if limits.switches > 0 && switches > limits.switches {
                self.flapping = true;
                return Some(News::Started);
            }
            return None;
        }
        // Flapping detection switched off by a reload ends it at once.
        if limits.switches == 0 || switches == 0 {
            self.flapping = false;
            return Some(News::Settled);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The news of each run of `runs` ('s' switched, '.' did not).
    fn news(runs: &str, limits: Limits) -> Vec<(usize, News)> {
        let mut flap = Flap::default();
        runs.chars()
            .enumerate()
            .filter_map(|(i, c)| flap.observe(c == 's', limits).map(|n| (i, n)))
            .collect()
    }

    #[test]
    fn more_than_flap_switches_within_the_window_is_flapping_once() {
        let limits = Limits::default();
        // Four switches in ten runs is not flapping; the fifth is.
        assert_eq!(news("s.s.s.s...", limits), vec![]);
        assert_eq!(news("s.s.s.s.s.sss", limits), vec![(8, News::Started)]);
        // Spread out, switches leave the window before they add up.
        assert_eq!(news("s....s....s....s....s....s", limits), vec![]);
    }

    #[test]
    fn it_settles_after_a_whole_window_without_a_switch() {
        let limits = Limits {
            switches: 1,
            window: 5,
        };
        assert_eq!(
            news("ss....s", limits),
            vec![(1, News::Started)],
            "four quiet runs are not a window of five"
        );
        assert_eq!(
            news("ss.....s", limits),
            vec![(1, News::Started), (6, News::Settled)]
        );
    }

    #[test]
    fn zero_switches_never_flaps_and_switching_it_off_settles() {
        let off = Limits {
            switches: 0,
            window: 10,
        };
        assert_eq!(news("ssssssssssss", off), vec![]);
        let mut flap = Flap::default();
        for _ in 0..6 {
            flap.observe(true, Limits::default());
        }
        assert!(flap.flapping);
        assert_eq!(flap.observe(true, off), Some(News::Settled));
    }

    #[test]
    fn a_window_of_64_runs_counts_them_all() {
        let limits = Limits {
            switches: 63,
            window: 64,
        };
        assert_eq!(news(&"s".repeat(64), limits), vec![(63, News::Started)]);
    }
}
