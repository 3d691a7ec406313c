//! Email, in three rooms: `message` composes a mail (subject, body,
//! threading headers, Message-ID), `spool` keeps queued mails on disk, and
//! `outbox` delivers them from a thread of its own.

mod message;
mod outbox;
mod smtp;
mod spool;

pub(crate) use message::open_thread;
pub use message::{new_message_id, one_line, render_subject, thread_id, Mail, NO_SUBSTITUTION};
pub use outbox::{Held, Outbox};
