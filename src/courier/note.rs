//! A notification: one switch told to one notifier, as its queue keeps it
//! (`state_dir/notify/NAME/`, in the format earlier picomons wrote). The
//! event is carried as the command's `NOTIFY_*` environment, which the
//! Alertmanager channel reads its labels from too. How an attempt at one
//! is logged is here too, the same words for every kind of notifier.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::channel::{Entry, Try};
use super::retry::{self, Outcome};
use crate::config::Emails;
use crate::human::human_duration;
use crate::mail::Mail;
use crate::state::{Event, Transition};

/// The prefix of the variables that carry the event to a command.
const ENV_PREFIX: &str = "NOTIFY_";

/// One notification: a switch told to one notifier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Note {
    /// The instance whose switch this tells.
    pub(crate) id: String,
    /// A Problem (the instance went failing), or its end (OK, removed).
    pub(crate) problem: bool,
    /// When the outage began, as saved in the state: with `problem`, what
    /// a restart compares with the saved state (see `told`).
    pub(crate) since: SystemTime,
    /// The mail subject, for the log.
    pub(crate) subject: String,
    /// The event, as the command's environment.
    pub(crate) env: Vec<(String, String)>,
}

impl Note {
    /// The value of the event's variable `name` (without the prefix).
    pub(crate) fn var(&self, name: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k.strip_prefix(ENV_PREFIX) == Some(name))
            .map_or("", |(_, v)| v.as_str())
    }

    pub(crate) fn new(emails: &Emails, event: &Event) -> Note {
        let (state, severity) = Mail::state_words(event);
        let subject = Mail::alert(emails, event).subject;
        let result = &event.result;
        let (problem, duration) = match event.transition {
            Transition::Failing => (
                true,
                result
                    .started
                    .duration_since(event.since)
                    .unwrap_or_default(),
            ),
            Transition::Recovered { after, .. } | Transition::Unmonitored { after } => {
                (false, after)
            }
        };
        let vars = [
            ("STATE", state.to_string()),
            ("SEVERITY", severity.to_string()),
            ("CHECK", event.check.clone()),
            ("INSTANCE", event.id.clone()),
            ("TARGET", event.dest.clone()),
            ("SINCE", crate::human::human_time(event.since)),
            ("DURATION", duration.as_secs().to_string()),
            ("OUTPUT", result.output()),
            ("SUBJECT", subject.clone()),
        ];
        Note {
            id: event.id.clone(),
            problem,
            since: event.since,
            subject,
            env: vars
                .into_iter()
                .map(|(k, v)| (format!("{ENV_PREFIX}{k}"), v))
                .collect(),
        }
    }

    /// Whether the saved state has the switch this tells: a Problem when
    /// it says the Problem of the outage since `since` was told (`mailed`),
    /// its end when not.
    pub(crate) fn told(&self, mailed: &[(String, SystemTime)]) -> bool {
        let open = mailed
            .iter()
            .any(|(id, since)| *id == self.id && *since == self.since);
        open == self.problem
    }
}

/// What a notifier's attempt means, logged as every notifier says it.
pub(crate) fn logged(
    name: &str,
    note: &Note,
    result: Result<(), String>,
    retry_every: Duration,
    attempt: Try,
) -> Outcome {
    match result {
        Ok(()) => {
            log::info!("notify.{name}: delivered {:?}", note.subject);
            Outcome::Delivered
        }
        Err(why) => {
            let outcome = Outcome::Down;
            log::warn!(
                "notify.{name}: {:?} not delivered: {why}; trying again in {} ({} queued)",
                note.subject,
                human_duration(retry::wait(&outcome, retry_every)),
                attempt.queued
            );
            outcome
        }
    }
}

impl Entry for Note {
    const QUEUED: &'static str = "queued notification";
    fn subject(&self) -> &str {
        &self.subject
    }
    /// Notifications have no time of their own: written when queued.
    fn queued_at(&self) -> SystemTime {
        SystemTime::now()
    }
    fn record(&self) -> String {
        self.env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::courier::queue::Queue;
    use std::time::UNIX_EPOCH;

    fn note(problem: bool, since: u64) -> Note {
        Note {
            id: "web".into(),
            problem,
            since: UNIX_EPOCH + Duration::from_secs(since),
            subject: String::new(),
            env: Vec::new(),
        }
    }

    #[test]
    fn a_pending_notification_is_kept_only_when_the_saved_state_has_its_switch() {
        let failing = [("web".to_string(), UNIX_EPOCH + Duration::from_secs(100))];
        // Saved failing since 100: its Problem was told, its end was not.
        assert!(note(true, 100).told(&failing));
        assert!(!note(false, 100).told(&failing));
        // Another outage, or none saved failing: the reverse.
        assert!(!note(true, 50).told(&failing));
        assert!(note(false, 50).told(&failing));
        assert!(!note(true, 100).told(&[]));
        assert!(note(false, 100).told(&[]));
    }

    #[test]
    fn a_queue_after_a_crash_keeps_what_was_saved_and_drops_pending_switches_never_saved() {
        let dir = tempfile::tempdir().expect("temp dir");
        let queue = Queue::open(dir.path(), "notification queue").expect("queue");
        let first = queue.save_pending(&note(true, 100)).expect("write");
        queue.commit(&first).expect("commit");
        queue.save_pending(&note(false, 100)).expect("write");
        queue.save_pending(&note(true, 200)).expect("write");
        let failing = [("web".to_string(), UNIX_EPOCH + Duration::from_secs(100))];
        let loaded = queue.load(|n: &Note| n.told(&failing));
        let got: Vec<(bool, SystemTime)> =
            loaded.iter().map(|(n, _)| (n.problem, n.since)).collect();
        assert_eq!(got, [(true, UNIX_EPOCH + Duration::from_secs(100))]);
        // The one kept is queued for good; the dropped ones are gone.
        let left = std::fs::read_dir(dir.path())
            .expect("list")
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_file()))
            .count();
        assert_eq!(left, 1);
    }
}
