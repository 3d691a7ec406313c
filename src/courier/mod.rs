//! Delivery, for every channel: one courier per channel (the outbox's
//! SMTP, each `[notify.NAME]`), each a thread of its own that owns the
//! channel's durable queue, hold and release, retry and back-off, the
//! full-disk fallback and the stop grace; the channels (`email`, `command`,
//! `alertmanager`) stand behind one trait and hold only what is theirs.
//! `Post` is every courier of the daemon, so that the scheduler holds,
//! saves and releases once for all of them.
//!
//! An entry that tells a switch is `hold`en (on disk, pending) until the
//! caller has saved the switch, then `release`d: what a channel may have
//! delivered is always what the saved state knows was told.

mod alertmanager;
mod channel;
mod command;
mod disk_full;
mod email;
mod front;
mod note;
mod notifiers;
mod post;
mod queue;
mod retry;
mod smtp;
mod worker;

pub use email::Outbox;
pub(crate) use post::{Post, Told};
