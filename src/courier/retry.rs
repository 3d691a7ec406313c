//! Retry and back-off, for every channel: how an attempt ended (`Outcome`,
//! as a channel reports it) becomes what the courier does next (`Step`),
//! and how a stop's deadline bounds what is still tried. Pure functions of
//! the outcome, the clock and the channel's retry interval, so that every
//! decision is unit-tested without a server.

use std::time::{Duration, Instant};

/// How long past a stop's deadline a stop waits for a step already under
/// way, and the least a step is given while stopping.
pub(crate) const STOP_STEP: Duration = Duration::from_secs(1);

/// How one attempt to deliver one entry ended, as its channel saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing is left to do for it: delivered (to every recipient that
    /// did not refuse it for good).
    Delivered,
    /// Delivered in part; the rest (deferred recipients) is tried again
    /// after one retry interval.
    Partly,
    /// Refused as a whole; a refusal for good (`permanent`, 5xx) waits
    /// longer, since only the operator can fix it.
    Refused { permanent: bool },
    /// Nothing could be delivered at all (the server is unreachable, the
    /// command fails): every entry waits one retry interval.
    Down,
    /// Can never be delivered (it cannot even be built): set aside, why.
    Unsendable(String),
}

/// What the courier does with the entry after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Off the queue and off the disk.
    Done,
    /// This entry again at this time; the others go on.
    Retry(Instant),
    /// No entry at all before this time.
    Pause(Instant),
    /// Into `rejected/`, saying why (or dropped, without a file).
    SetAside(String),
}

/// A message refused as a whole for good (5xx) is tried again after ten
/// retry intervals, at most an hour (and never sooner than one interval):
/// the operator may fix the server, and alerts must arrive after the fix.
pub(crate) fn refused_backoff(retry: Duration) -> Duration {
    retry
        .saturating_mul(10)
        .min(Duration::from_secs(3600))
        .max(retry)
}

/// How long an entry (or the channel) waits after `outcome`; what the log
/// says and what `step` does are the same figure.
pub(crate) fn wait(outcome: &Outcome, retry: Duration) -> Duration {
    match outcome {
        Outcome::Refused { permanent: true } => refused_backoff(retry),
        Outcome::Delivered | Outcome::Unsendable(_) => Duration::ZERO,
        Outcome::Partly | Outcome::Refused { .. } | Outcome::Down => retry,
    }
}

/// What to do after `outcome` at `now`, with the channel's `retry`.
pub(crate) fn step(outcome: Outcome, now: Instant, retry: Duration) -> Step {
    let at = now + wait(&outcome, retry);
    match outcome {
        Outcome::Delivered => Step::Done,
        Outcome::Partly | Outcome::Refused { .. } => Step::Retry(at),
        Outcome::Down => Step::Pause(at),
        Outcome::Unsendable(why) => Step::SetAside(why),
    }
}

/// One step of a conversation (a command and its reply, an HTTP request)
/// gets `normal`; while stopping, at most the time left before the stop's
/// deadline, and at least `floor`.
pub(crate) fn step_timeout(
    now: Instant,
    stop_at: Option<Instant>,
    normal: Duration,
    floor: Duration,
) -> Duration {
    match stop_at {
        None => normal,
        Some(deadline) => deadline
            .saturating_duration_since(now)
            .clamp(floor.min(normal), normal),
    }
}

/// While stopping: whether the courier ends now rather than start the
/// attempt due at `next` (none: nothing is queued), since one that takes
/// as long as the last one (`last`) could not end before `deadline`.
pub(crate) fn too_late(
    next: Option<Instant>,
    now: Instant,
    last: Duration,
    deadline: Instant,
) -> bool {
    next.map_or(true, |due| due.max(now) + last >= deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_refused_message_waits_ten_retries_at_most_an_hour() {
        assert_eq!(
            refused_backoff(Duration::from_millis(500)),
            Duration::from_secs(5)
        );
        assert_eq!(refused_backoff(60 * S), 600 * S);
        assert_eq!(refused_backoff(900 * S), 3600 * S);
        assert_eq!(refused_backoff(7200 * S), 7200 * S);
    }

    #[test]
    fn each_outcome_leads_to_its_step() {
        let now = Instant::now();
        let retry = 30 * S;
        assert_eq!(step(Outcome::Delivered, now, retry), Step::Done);
        assert_eq!(step(Outcome::Partly, now, retry), Step::Retry(now + retry));
        assert_eq!(
            step(Outcome::Refused { permanent: false }, now, retry),
            Step::Retry(now + retry)
        );
        // Refused for good: this mail waits ten intervals, the others not.
        assert_eq!(
            step(Outcome::Refused { permanent: true }, now, retry),
            Step::Retry(now + 300 * S)
        );
        // Down: every entry waits, not only this one.
        assert_eq!(step(Outcome::Down, now, retry), Step::Pause(now + retry));
        assert_eq!(
            step(Outcome::Unsendable("no From".into()), now, retry),
            Step::SetAside("no From".into())
        );
    }

    #[test]
    fn while_stopping_a_step_gets_the_time_left_within_its_bounds() {
        let now = Instant::now();
        let (normal, floor) = (15 * S, S);
        assert_eq!(step_timeout(now, None, normal, floor), normal);
        assert_eq!(step_timeout(now, Some(now + 4 * S), normal, floor), 4 * S);
        assert_eq!(step_timeout(now, Some(now + 60 * S), normal, floor), normal);
        // Past the deadline: still the floor, so a step can end at all.
        assert_eq!(step_timeout(now + 9 * S, Some(now), normal, floor), floor);
        // A channel whose own timeout is below the floor keeps it.
        let short = Duration::from_millis(200);
        assert_eq!(step_timeout(now, Some(now), short, floor), short);
    }

    #[test]
    fn a_stop_sends_what_can_end_before_its_deadline_and_no_more() {
        let now = Instant::now();
        let deadline = now + 5 * S;
        assert!(too_late(None, now, Duration::ZERO, deadline));
        assert!(!too_late(Some(now), now, S, deadline));
        // The last send took 6 s: the next one could not end in time.
        assert!(too_late(Some(now), now, 6 * S, deadline));
        // Due only after the deadline (a paused channel): not waited for.
        assert!(too_late(Some(now + 5 * S), now, Duration::ZERO, deadline));
    }
}
