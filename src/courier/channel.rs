//! What a channel is to the courier: the one trait every kind of delivery
//! (SMTP, a command, Alertmanager) stands behind, so that the courier's
//! queue, hold and release, retry, full-disk fallback and stop are written
//! once, and each channel's file holds only what is its own.

use std::time::{Duration, Instant, SystemTime};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::retry::Outcome;

/// What a channel delivers: a mail, a notification. It is its own file in
/// the channel's queue, in the format earlier picomons wrote.
pub(crate) trait Entry: Serialize + DeserializeOwned + Send + 'static {
    /// What the log calls one found in the queue: "spooled mail".
    const QUEUED: &'static str;
    /// The subject, for the log.
    fn subject(&self) -> &str;
    /// When it entered the queue: its file sorts by it, so one written
    /// late (after a full disk) still takes its place.
    fn queued_at(&self) -> SystemTime;
    /// What the log keeps of one dropped without a file to set aside.
    fn record(&self) -> String;
}

/// How the log names a channel and what it carries.
#[derive(Debug, Clone)]
pub(crate) struct Words {
    /// Put before every line: "" for mail, "notify.NAME: " for a notifier.
    pub(crate) prefix: String,
    /// One entry: "mail", "notification".
    pub(crate) one: &'static str,
    /// Several: "mails", "notifications".
    pub(crate) many: &'static str,
}

/// What one attempt is given.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Try {
    /// The stop's deadline, while stopping: a step never waits past it.
    pub(crate) stop_at: Option<Instant>,
    /// How many entries are queued, this one included, for the log.
    pub(crate) queued: usize,
}

/// One kind of delivery. The courier calls it from its own thread only.
pub(crate) trait Channel: Send + 'static {
    type Entry: Entry;
    /// The settings a reload hands over.
    type Settings: Send + 'static;

    /// The wait between attempts (`emails.retry`, `retry_every`).
    fn retry(&self) -> Duration;

    /// Tries `entry` once, logging what happened (with the wait that
    /// `retry::wait` gives for the outcome), and keeps in it what is its
    /// own to remember (which recipients have it).
    fn deliver(&mut self, entry: &mut Self::Entry, attempt: Try) -> Outcome;

    /// After a `Down`: marks `entry`, queued behind the one that failed,
    /// as waiting for the same reason; true when it changed (and is then
    /// written again).
    fn note_down(&self, _entry: &mut Self::Entry) -> bool {
        false
    }

    /// Whether `deliver` changes what an entry holds when it is not done
    /// (the file is then written again after each attempt).
    fn keeps_notes(&self) -> bool {
        false
    }

    /// New settings; the courier tries every queued entry again at once.
    fn reconfigure(&mut self, settings: Self::Settings);

    /// When the channel has work of its own (close an idle connection,
    /// send firing alerts again), if any.
    fn wake_at(&self) -> Option<Instant> {
        None
    }

    /// That work, done when it is due.
    fn wake(&mut self, _now: Instant) {}

    /// At a stop: leaves the server cleanly.
    fn close(&mut self) {}
}

#[cfg(test)]
pub(super) mod tests {
    use super::Entry;
    use serde::{Deserialize, Serialize};
    use std::time::SystemTime;

    /// The entry of the courier's tests: a line of text.
    #[derive(Debug, Serialize, Deserialize)]
    pub(crate) struct Text(pub(crate) String);

    impl Entry for Text {
        const QUEUED: &'static str = "queued text";
        fn subject(&self) -> &str {
            &self.0
        }
        fn queued_at(&self) -> SystemTime {
            SystemTime::UNIX_EPOCH
        }
        fn record(&self) -> String {
            self.0.clone()
        }
    }
}
