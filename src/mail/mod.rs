//! Composing email: subject, body, threading headers, Message-ID
//! (`message`). Delivering it is the courier's (`crate::courier`).

mod message;

pub(crate) use message::{contact_threads, open_threads};
pub use message::{new_message_id, one_line, render_subject, thread_id, Mail, NO_SUBSTITUTION};
