//! `[notify.NAME]` tables validated: notifiers beyond email, each with its
//! `type` and the options of that type. An unknown type or a key of
//! another type is an error naming the key, so that a notifier never
//! silently does nothing.

use std::ffi::OsString;
use std::time::Duration;

use super::raw::RawNotify;
use super::validate::{Seconds, Validator};

/// How long a notifier command may run, unless `timeout` says otherwise.
const DEFAULT_TIMEOUT: f64 = 10.0;
/// How long after a failed attempt the next one comes, unless
/// `retry_every` says otherwise.
const DEFAULT_RETRY: f64 = 60.0;

/// One validated notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notifier {
    /// The NAME of `[notify.NAME]`; also its queue's directory name.
    pub name: String,
    pub kind: NotifierKind,
    /// A failed delivery is tried again this long after it ended.
    pub retry_every: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifierKind {
    /// `type = "command"`: `argv` run with no shell, the event in its
    /// environment, killed with its process group at `timeout`.
    Command {
        argv: Vec<OsString>,
        timeout: Duration,
    },
}

impl Validator<'_> {
    pub(super) fn notifier(&mut self, name: &str, raw: &RawNotify) -> Option<Notifier> {
        let key = |k: &str| format!("notify.{name}.{k}");
        let before = self.problems.len();
        // The name is a directory under state_dir: no "." or "..".
        if name.starts_with('.') {
            self.bad(&format!("notify.{name}"), "a name must not start with '.'");
        }
        self.name(&format!("notify.{name}"), name);
        let retry_every = self.secs(
            &key("retry_every"),
            raw.retry_every.unwrap_or(DEFAULT_RETRY),
            Seconds::DAY,
        );
        let kind = match raw.kind.as_str() {
            "command" => {
                let argv: Vec<OsString> =
                    raw.command.iter().flatten().map(OsString::from).collect();
                if !argv.first().is_some_and(|program| !program.is_empty()) {
                    self.bad(
                        &key("command"),
                        "a command notifier needs command = [\"program\", \"argument\", …] with a program",
                    );
                }
                let timeout = self.secs(
                    &key("timeout"),
                    raw.timeout.unwrap_or(DEFAULT_TIMEOUT),
                    Seconds::DAY,
                );
                NotifierKind::Command { argv, timeout }
            }
            other => {
                self.bad(
                    &key("type"),
                    format!("unknown notifier type {other:?}; known types: \"command\""),
                );
                return None;
            }
        };
        (self.problems.len() == before).then(|| Notifier {
            name: name.to_string(),
            kind,
            retry_every,
        })
    }
}
