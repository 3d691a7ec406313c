//! Storm digests: when more than `emails.digest_over` problems (or more
//! than that many recoveries) are due at one flush, they go out as one
//! mail listing them all instead of one mail each, so that a broken
//! switch in front of 40 hosts is one mail, not 40. A pure decision: the
//! switches due in, the mails to send out; the daemon carries them out.

use crate::state::{Event, Transition};

/// One mail to send.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// The instance's own Problem or OK mail.
    One(Box<Event>),
    /// One mail for many switches of one kind.
    Digest(Digest),
}

/// Many problems, or many recoveries, told in one mail.
#[derive(Debug)]
pub struct Digest {
    /// Recoveries (an OK digest) rather than problems.
    pub recovered: bool,
    /// In instance id order.
    pub events: Vec<Event>,
    /// Set when more than half of all instances failed at once: then
    /// picomon's own host or network is the likely cause. (failed, of all).
    pub blind: Option<(usize, usize)>,
}

/// Whether `failed` problems at once, out of `instances`, point at
/// picomon's own side rather than at what it watches: more than half of
/// everything, and a storm by the `digest_over` measure.
pub(crate) fn looks_blind(failed: usize, instances: usize, over: u32) -> bool {
    over > 0 && failed >= over as usize && failed * 2 > instances
}

/// The mails for the switches `due` at one flush: problems and recoveries
/// are counted apart; more than `over` of a kind (`over` > 0) make one
/// digest, fewer go one by one. `instances` is how many are monitored.
pub(crate) fn plan(due: Vec<Event>, over: u32, instances: usize) -> Vec<Outgoing> {
    let (recoveries, problems): (Vec<Event>, Vec<Event>) = due
        .into_iter()
        .partition(|e| matches!(e.transition, Transition::Recovered { .. }));
    let mut out = Vec::new();
    for (events, recovered) in [(problems, false), (recoveries, true)] {
        if over > 0 && events.len() > over as usize {
            // Switches told late (released from a hold, a silence ended)
            // did not fail at the same time as the others.
            let failed = events.iter().filter(|e| e.late.is_none()).count();
            out.push(Outgoing::Digest(Digest {
                recovered,
                events,
                blind: (!recovered && looks_blind(failed, instances, over))
                    .then_some((failed, instances)),
            }));
        } else {
            out.extend(events.into_iter().map(|e| Outgoing::One(Box::new(e))));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{RunResult, State};
    use std::time::{Duration, SystemTime};

    fn event(id: &str, recovered: bool) -> Event {
        Event {
            id: id.into(),
            check: id.into(),
            dest: "h".into(),
            transition: if recovered {
                Transition::Recovered {
                    after: Duration::from_secs(60),
                    failed_runs: 2,
                }
            } else {
                Transition::Failing
            },
            since: SystemTime::UNIX_EPOCH,
            result: RunResult {
                state: if recovered {
                    State::Ok
                } else {
                    State::Critical
                },
                exit_code: Some(2),
                summary: "down".into(),
                perfdata: String::new(),
                details: String::new(),
                duration: Duration::ZERO,
                started: SystemTime::UNIX_EPOCH,
            },
            reply_to: None,
            held: Vec::new(),
            late: None,
        }
    }

    fn events(n: usize, recovered: bool) -> Vec<Event> {
        (0..n).map(|i| event(&format!("c{i}"), recovered)).collect()
    }

    /// (singles, digest sizes) of a plan.
    fn shape(plan: &[Outgoing]) -> (usize, Vec<(bool, usize, bool)>) {
        let singles = plan
            .iter()
            .filter(|o| matches!(o, Outgoing::One(_)))
            .count();
        let digests = plan
            .iter()
            .filter_map(|o| match o {
                Outgoing::Digest(d) => Some((d.recovered, d.events.len(), d.blind.is_some())),
                Outgoing::One(_) => None,
            })
            .collect();
        (singles, digests)
    }

    #[test]
    fn up_to_digest_over_switches_go_one_by_one_and_more_make_one_digest() {
        assert_eq!(shape(&plan(events(5, false), 5, 100)), (5, vec![]));
        assert_eq!(
            shape(&plan(events(6, false), 5, 100)),
            (0, vec![(false, 6, false)])
        );
    }

    #[test]
    fn problems_and_recoveries_are_counted_apart() {
        let mut due = events(20, false);
        due.extend(events(3, true));
        assert_eq!(shape(&plan(due, 5, 100)), (3, vec![(false, 20, false)]));
        let mut due = events(2, false);
        due.extend(events(20, true));
        assert_eq!(shape(&plan(due, 5, 100)), (2, vec![(true, 20, false)]));
    }

    #[test]
    fn zero_disables_digests() {
        assert_eq!(shape(&plan(events(50, false), 0, 50)), (50, vec![]));
    }

    #[test]
    fn more_than_half_of_everything_failing_at_once_says_monitoring_may_be_blind() {
        assert_eq!(
            shape(&plan(events(21, false), 5, 40)),
            (0, vec![(false, 21, true)])
        );
        // Exactly half is not more than half.
        assert_eq!(
            shape(&plan(events(20, false), 5, 40)),
            (0, vec![(false, 20, false)])
        );
        // Recoveries never are.
        assert_eq!(
            shape(&plan(events(40, true), 5, 40)),
            (0, vec![(true, 40, false)])
        );
        // Few instances: more than half, but no storm.
        assert!(!looks_blind(3, 4, 5));
        assert!(looks_blind(5, 8, 5));
    }
}
