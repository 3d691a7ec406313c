//! Falling behind: when more runs come due than the machine can run, each
//! check runs less often than configured (the plugin loop takes runs in
//! the order they came due, so none is starved and none runs twice at
//! once). That is one fact about the daemon, not one per check: counted
//! here over a minute, and said once a minute with its figures.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long the figures are counted over before they are said again.
const WINDOW: Duration = Duration::from_secs(60);
/// The first time: soon, so that an operator starting an overloaded
/// daemon hears of it in seconds, figures already meaningful.
const FIRST_WINDOW: Duration = Duration::from_secs(10);

/// Runs due and runs done per second over a minute in which picomon fell
/// behind.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Behind {
    pub due_per_s: f64,
    pub ran_per_s: f64,
}

impl fmt::Display for Behind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} runs due per second, {} run",
            thousands(self.due_per_s),
            thousands(self.ran_per_s)
        )
    }
}

/// `10,000`, `1,900`, `0.5`: a rate as an operator reads it.
fn thousands(rate: f64) -> String {
    if rate < 10.0 {
        let one = format!("{rate:.1}");
        return one.strip_suffix(".0").map(str::to_string).unwrap_or(one);
    }
    let digits = format!("{:.0}", rate);
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The daemon's count of runs skipped (their check's previous run had not
/// even started when the next came due) and runs done, minute by minute.
#[derive(Debug)]
pub(crate) struct Pace {
    since: Instant,
    skipped: u64,
    ran: u64,
    /// The last minute's figures, if picomon fell behind in it.
    last: Option<Behind>,
}

impl Pace {
    pub(crate) fn new(now: Instant) -> Pace {
        Pace {
            since: now,
            skipped: 0,
            ran: 0,
            last: None,
        }
    }

    /// A run came due while its check's previous run was still waiting
    /// for its turn.
    pub(crate) fn skipped(&mut self) {
        self.skipped += 1;
    }

    /// A run ended.
    pub(crate) fn ran(&mut self) {
        self.ran += 1;
    }

    /// At each tick: when a minute is over, its figures if picomon fell
    /// behind in it (to be said once), and a new minute begins. The first
    /// minute of falling behind (after one that kept up) is ten seconds.
    /// `due_per_s`: what the schedule asks, asked only then.
    pub(crate) fn minute(
        &mut self,
        now: Instant,
        due_per_s: impl FnOnce() -> f64,
    ) -> Option<Behind> {
        let elapsed = now.saturating_duration_since(self.since);
        let window = match self.last {
            Some(_) => WINDOW,
            None => FIRST_WINDOW,
        };
        if elapsed < window {
            return None;
        }
        let behind = (self.skipped > 0).then(|| Behind {
            due_per_s: due_per_s(),
            ran_per_s: self.ran as f64 / elapsed.as_secs_f64(),
        });
        *self = Pace {
            last: behind,
            ..Pace::new(now)
        };
        behind
    }

    /// Whether picomon fell behind in the last minute, for the status.
    pub(crate) fn behind(&self) -> Option<Behind> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One second of 10,000 runs due, of which 1,900 ran.
    fn overloaded_second(pace: &mut Pace) {
        for _ in 1_900..10_000 {
            pace.skipped();
        }
        for _ in 0..1_900 {
            pace.ran();
        }
    }

    const DUE: fn() -> f64 = || 10_000.0;

    #[test]
    fn falling_behind_is_said_after_ten_seconds_then_once_a_minute_with_figures() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut pace = Pace::new(t0);
        for second in 0..10 {
            overloaded_second(&mut pace);
            assert_eq!(pace.minute(at(second), DUE), None, "said too soon");
        }
        let said = pace.minute(at(10), DUE).expect("fell behind");
        assert_eq!(said.to_string(), "10,000 runs due per second, 1,900 run");
        assert_eq!(pace.behind(), Some(said));
        // Still behind: said again a minute later, not at every tick.
        for second in 11..70 {
            overloaded_second(&mut pace);
            assert_eq!(pace.minute(at(second), DUE), None, "said twice in a minute");
        }
        overloaded_second(&mut pace);
        assert_eq!(pace.minute(at(70), DUE), Some(said));
        // A minute that kept up says nothing, and the status forgets it.
        pace.ran();
        assert_eq!(pace.minute(at(130), DUE), None);
        assert_eq!(pace.behind(), None);
    }

    #[test]
    fn rates_read_like_an_operator_writes_them() {
        for (rate, text) in [
            (0.5, "0.5"),
            (3.0, "3"),
            (12.4, "12"),
            (999.6, "1,000"),
            (1_234_567.0, "1,234,567"),
        ] {
            assert_eq!(thousands(rate), text);
        }
    }
}
