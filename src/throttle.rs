//! A throttle for repeated warnings: the first of a kind in each window is
//! logged, the rest counted. Its own file, at the ground floor, because the
//! daemon loop and the dead man's switch both use it and neither should
//! import the logger's setup (which knows the configuration's errors).

/// Keeps repeated warnings of one kind about one check from flooding the
/// log (journald's rate limit would then drop the lines that matter): the
/// first in each `window` is logged, the rest only counted, and the count
/// rides on the next line logged. State switches and errors never go
/// through it.
pub(crate) struct Throttle {
    window: std::time::Duration,
    seen: std::collections::HashMap<String, (std::time::Instant, u64)>,
}

impl Throttle {
    pub(crate) fn new(window: std::time::Duration) -> Throttle {
        Throttle {
            window,
            seen: std::collections::HashMap::new(),
        }
    }

    /// Whether a line for `key` may be logged now; when it may, a note on
    /// how many were held back since the last one ("" when none were).
    pub(crate) fn admit(&mut self, key: &str, now: std::time::Instant) -> Option<String> {
        match self.seen.get_mut(key) {
            Some((last, held)) if now.duration_since(*last) < self.window => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                let note = match std::mem::take(held) {
                    0 => String::new(),
                    n => format!(
                        " ({n} more times in the last {})",
                        crate::human::human_duration(now.duration_since(*last))
                    ),
                };
                *last = now;
                Some(note)
            }
            None => {
                self.seen.insert(key.to_string(), (now, 0));
                Some(String::new())
            }
        }
    }

    /// Forgets keys of checks no longer configured.
    pub(crate) fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.seen.retain(|key, _| keep(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_flood_of_one_warning_is_one_line_a_minute_with_a_count() {
        let mut t = Throttle::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(t.admit("a", t0), Some(String::new()));
        for s in 1..60 {
            assert_eq!(t.admit("a", t0 + Duration::from_secs(s)), None);
        }
        // Another check's warning is its own.
        assert_eq!(t.admit("b", t0), Some(String::new()));
        let note = t
            .admit("a", t0 + Duration::from_secs(61))
            .expect("admitted");
        assert!(note.contains("59 more times"), "{note}");
        assert_eq!(t.admit("a", t0 + Duration::from_secs(62)), None);
    }
}
