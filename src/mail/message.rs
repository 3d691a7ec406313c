//! Composing mails: subjects from templates, bodies, the threading
//! headers and Message-IDs, and the lettre message that goes on the wire.
//! Nothing here touches the disk or the network.

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::Message;
use serde::{Deserialize, Serialize};

use crate::config::Emails;
use crate::host::address_of;
use crate::human::{human_duration, human_time};
use crate::state::{Event, Transition};

/// What an unknown `{placeholder}` renders as.
pub const NO_SUBSTITUTION: &str = "<no substitution>";
/// Longest subject, in characters.
const SUBJECT_MAX: usize = 200;
/// Most plugin output put in a body, in bytes.
const OUTPUT_MAX: usize = 8 * 1024;

/// One email, as queued, spooled and finally sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mail {
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    /// When what the mail tells happened (its Date header).
    pub event_time: SystemTime,
    pub queued_at: SystemTime,
    /// Why the last delivery attempt failed, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Replaces control characters (CR and LF above all) with spaces, so that
/// nothing from a plugin or a name can start a new header.
pub fn one_line(s: &str) -> String {
    let line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let line = line.trim();
    match line.char_indices().nth(SUBJECT_MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

/// Renders `{name}` placeholders from `vars`; an unknown one becomes
/// `<no substitution>`, and the result is one line.
pub fn render_subject(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('}') {
            let name = &after[..name_len];
            let value = vars
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| *v)
                .unwrap_or(NO_SUBSTITUTION);
            out.push_str(value);
            rest = &after[name_len + 1..];
        } else {
            out.push('{');
            rest = after;
        }
    }
    out.push_str(rest);
    one_line(&out)
}

/// A new, unique Message-ID in the domain of the `from` address.
pub fn new_message_id(from: &str) -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let address = address_of(from);
    let domain = address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("localhost");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let random = RandomState::new().build_hasher().finish();
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    format!(
        "<{nanos:x}.{:x}.{count}.{random:016x}@{domain}>",
        std::process::id()
    )
}

/// Plugin output for a body: capped, each line indented.
fn indented_output(output: &str) -> String {
    let mut cut = output.len().min(OUTPUT_MAX);
    while !output.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::new();
    for line in output[..cut].lines() {
        let _ = writeln!(out, "    {line}");
    }
    if cut < output.len() {
        let _ = writeln!(out, "    [… {} more bytes]", output.len() - cut);
    }
    out
}

impl Mail {
    /// A mail to every configured recipient.
    pub fn new(emails: &Emails, subject: String, body: String, event_time: SystemTime) -> Mail {
        Mail {
            message_id: new_message_id(&emails.from),
            in_reply_to: None,
            from: emails.from.clone(),
            to: emails.to.clone(),
            subject: one_line(&subject),
            body,
            event_time,
            queued_at: SystemTime::now(),
            last_error: None,
        }
    }

    /// The Problem or OK mail of a state switch. A recovery is threaded
    /// under `thread`, the Problem mail's Message-ID.
    pub fn alert(emails: &Emails, event: &Event, thread: Option<&str>) -> Mail {
        let result = &event.result;
        let (state, severity) = match event.transition {
            Transition::Failing => ("Problem", result.state.as_str()),
            Transition::Recovered { .. } => ("OK", "OK"),
        };
        let subject = render_subject(
            &emails.subject_tpl,
            &[
                ("state", state),
                ("check", &event.check),
                ("dest", &event.dest),
                ("severity", severity),
            ],
        );
        let mut body = String::new();
        match &event.transition {
            Transition::Failing => {
                let _ = writeln!(
                    body,
                    "{} on {} is failing: {severity}.\n",
                    event.check, event.dest
                );
                let _ = writeln!(body, "Check:    {} ({})", event.check, event.id);
                let _ = writeln!(body, "Target:   {}", event.dest);
                let _ = writeln!(body, "State:    {severity}");
                let _ = writeln!(
                    body,
                    "Since:    {} (first failed run)",
                    human_time(event.since)
                );
                let _ = writeln!(body, "Detected: {}", human_time(result.started));
            }
            Transition::Recovered { after, failed_runs } => {
                let _ = writeln!(
                    body,
                    "{} on {} recovered after {} ({failed_runs} retries).\n",
                    event.check,
                    event.dest,
                    human_duration(*after)
                );
                let _ = writeln!(body, "Check:     {} ({})", event.check, event.id);
                let _ = writeln!(body, "Target:    {}", event.dest);
                let _ = writeln!(body, "State:     OK");
                let _ = writeln!(body, "Failing:   since {}", human_time(event.since));
                let _ = writeln!(body, "Recovered: {}", human_time(result.started));
            }
        }
        let _ = write!(body, "\nOutput:\n{}", indented_output(&result.output()));
        let mut mail = Mail::new(emails, subject, body, result.started);
        if let Transition::Recovered { .. } = event.transition {
            mail.in_reply_to = thread.map(str::to_string);
        }
        mail
    }

    /// The lettre message, with a note on how long it waited if a delivery
    /// attempt failed before.
    pub(crate) fn message(&self, now: SystemTime) -> Result<Message, String> {
        let from: Mailbox = self
            .from
            .parse()
            .map_err(|e| format!("from {:?}: {e}", self.from))?;
        let mut builder = Message::builder()
            .from(from)
            .subject(self.subject.clone())
            .message_id(Some(self.message_id.clone()))
            .date(self.event_time)
            .header(ContentType::TEXT_PLAIN)
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".into(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
                "All".into(),
            ));
        for to in &self.to {
            let to: Mailbox = to.parse().map_err(|e| format!("to {to:?}: {e}"))?;
            builder = builder.to(to);
        }
        if let Some(thread) = &self.in_reply_to {
            builder = builder
                .in_reply_to(thread.clone())
                .references(thread.clone());
        }
        let body = match &self.last_error {
            Some(err) => {
                let waited = now.duration_since(self.queued_at).unwrap_or_default();
                format!(
                    "(queued {}: {})\n\n{}",
                    human_duration(waited),
                    one_line(err),
                    self.body
                )
            }
            None => self.body.clone(),
        };
        builder.body(body).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_placeholders_and_unknown_ones() {
        let vars = [
            ("state", "Problem"),
            ("check", "homepage"),
            ("dest", "web (IPv4)"),
            ("severity", "CRITICAL"),
        ];
        assert_eq!(
            render_subject("[picomon] {state}: {check} on {dest}", &vars),
            "[picomon] Problem: homepage on web (IPv4)"
        );
        assert_eq!(
            render_subject("{severity} {nope}", &vars),
            "CRITICAL <no substitution>"
        );
        assert_eq!(render_subject("{ {state} {", &vars), "{ Problem {");
        assert_eq!(render_subject("{}", &vars), "{}");
    }

    #[test]
    fn no_line_break_reaches_a_subject() {
        let vars = [("check", "x\r\nBcc: victim@example.org")];
        let subject = render_subject("{check}", &vars);
        assert!(!subject.contains('\r') && !subject.contains('\n'));
        assert_eq!(subject, "x  Bcc: victim@example.org");
        assert_eq!(one_line(&"a".repeat(500)).chars().count(), SUBJECT_MAX + 1);
    }

    #[test]
    fn message_ids_are_unique_and_use_the_from_domain() {
        let a = new_message_id("Picomon <picomon@example.org>");
        let b = new_message_id("Picomon <picomon@example.org>");
        assert_ne!(a, b);
        assert!(a.starts_with('<') && a.ends_with("@example.org>"), "{a}");
    }
}
