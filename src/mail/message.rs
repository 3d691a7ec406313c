//! Composing mails: subjects from templates, bodies, the threading
//! headers and Message-IDs, and the lettre message that goes on the wire.
//! Nothing here touches the disk or the network.

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::{Address, Message};
use serde::{Deserialize, Serialize};

use crate::config::Emails;
use crate::digest::Digest;
use crate::host::address_of;
use crate::human::{count, human_duration, human_time};
use crate::state::{Event, Late, Transition};

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
    /// Addresses of the recipients that have the mail: a retry (after a
    /// 4xx to another recipient) leaves them out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivered: Vec<String>,
    /// Addresses refused for good (5xx at RCPT): never tried again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
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

/// The domain of the `from` address, for Message-IDs.
fn domain_of(from: &str) -> String {
    let address = address_of(from);
    match address.rsplit_once('@') {
        Some((_, domain)) => domain.to_string(),
        None => "localhost".to_string(),
    }
}

/// A new, unique Message-ID in the domain of the `from` address.
pub fn new_message_id(from: &str) -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let random = RandomState::new().build_hasher().finish();
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    format!(
        "<{nanos:x}.{:x}.{count}.{random:016x}@{}>",
        std::process::id(),
        domain_of(from)
    )
}

/// How the Message-ID of a Problem mail (a thread) begins.
const THREAD_PREFIX: &str = "<picomon.";

/// The Message-ID of the Problem mail of instance `id` failing since
/// `since`. The recovery computes it again from the same two facts to
/// reply to it, so the thread needs nothing stored beside `since`. Bytes
/// of the id other than letters, digits, `-` and `_` are written `=XX`, so
/// any check name makes a valid header.
pub fn thread_id(from: &str, id: &str, since: SystemTime) -> String {
    let at = since.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut out = format!("{THREAD_PREFIX}{}.{:09}.", at.as_secs(), at.subsec_nanos());
    for byte in id.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => out.push(byte as char),
            _ => {
                let _ = write!(out, "={byte:02X}");
            }
        }
    }
    let _ = write!(out, "@{}>", domain_of(from));
    out
}

/// The thread a mail about instance `id` in `state` replies to, if one is
/// open: the mail that told its Problem (its own, derived; or a digest or
/// flapping mail, whose Message-ID the state keeps).
pub(crate) fn open_thread(
    from: &str,
    id: &str,
    state: &crate::state::CheckState,
) -> Option<String> {
    let since = state.mailed?;
    Some(
        state
            .mailed_by
            .clone()
            .unwrap_or_else(|| thread_id(from, id, since)),
    )
}

/// The threads a mail about instance `id` in `state`, going to
/// `contacts` (empty: no contact covers it), replies to: for each
/// contact, the Problem mail it got, as one In-Reply-To list; None when
/// no thread is open.
pub(crate) fn contact_threads(
    from: &str,
    id: &str,
    state: &crate::state::CheckState,
    contacts: &[String],
) -> Option<String> {
    let since = state.mailed?;
    if contacts.is_empty() {
        return open_thread(from, id, state);
    }
    let mut threads: Vec<String> = contacts
        .iter()
        .map(|c| match state.thread_of(Some(c)) {
            Some(by) => by.to_string(),
            None => thread_id(from, id, since),
        })
        .collect();
    threads.sort();
    threads.dedup();
    Some(threads.join(" "))
}

/// Every thread `state` holds open for instance `id` (its own or the
/// one `mailed_by` names, and each contact's): a mail left pending by a
/// stop that is one of them was told.
pub(crate) fn open_threads(from: &str, id: &str, state: &crate::state::CheckState) -> Vec<String> {
    let Some(own) = open_thread(from, id, state) else {
        return Vec::new();
    };
    let mut threads: Vec<String> = state.threads.values().cloned().collect();
    threads.push(own);
    threads
}

/// Plugin output for a body: capped, each line indented, control
/// characters shown escaped (a mail is read in a terminal too).
fn indented_output(output: &str) -> String {
    let mut cut = output.len().min(OUTPUT_MAX);
    while !output.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::new();
    for line in crate::human::escape_controls_keep_lines(&output[..cut]).lines() {
        let _ = writeln!(out, "    {line}");
    }
    if cut < output.len() {
        let _ = writeln!(out, "    [… {} more bytes]", output.len() - cut);
    }
    out
}

/// The instances whose mails a failing instance holds back (`depends`),
/// one `held:` line each, after its own output.
fn held_list(body: &mut String, held: &[String], transition: &Transition) {
    if held.is_empty() {
        return;
    }
    let n = held.len();
    let _ = match transition {
        Transition::Failing => writeln!(
            body,
            "\n{} on this one and {} too; {} held back until it recovers:",
            count(n, "check depends", "checks depend"),
            if n == 1 { "fails" } else { "fail" },
            if n == 1 {
                "its mail is"
            } else {
                "their mails are"
            },
        ),
        _ => writeln!(
            body,
            "\n{} on this one {} held back:",
            count(n, "check that depends", "checks that depend"),
            if n == 1 { "was" } else { "were" },
        ),
    };
    for id in held {
        let _ = writeln!(body, "    {id}: held");
    }
}

/// What a mail calls an instance: its check, and the target when that is
/// not just the check's own name again (a check without hosts).
fn named(check: &str, dest: &str) -> String {
    match check == dest {
        true => check.to_string(),
        false => format!("{check} on {dest}"),
    }
}

/// A subject template for an instance: " on {dest}" goes when the target
/// is the check's own name, so that it reads "c007", not "c007 on c007".
fn subject_template<'a>(template: &'a str, check: &str, dest: &str) -> std::borrow::Cow<'a, str> {
    match check == dest {
        true => template.replace(" on {dest}", "").into(),
        false => template.into(),
    }
}

/// Why a mail comes later than its switch, as its first paragraph.
fn late_note(late: &Late, body: &mut String) {
    let _ = match late {
        Late::Held { parent } => writeln!(
            body,
            "This mail is late: it was held back while {parent}, which this depends on, was failing; {parent} is no longer failing.\n"
        ),
        Late::Silenced => writeln!(
            body,
            "This mail is late: a silence (or a restart of picomon) kept it back until now.\n"
        ),
    };
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
            delivered: Vec::new(),
            refused: Vec::new(),
        }
    }

    /// The envelope of the next attempt: the sender's address and the
    /// recipients still waiting for the mail.
    pub(crate) fn envelope(&self) -> Result<(Address, Vec<Address>), String> {
        let from: Mailbox = self
            .from
            .parse()
            .map_err(|e| format!("from {:?}: {e}", self.from))?;
        let mut to = Vec::new();
        for rcpt in &self.to {
            let mailbox: Mailbox = rcpt.parse().map_err(|e| format!("to {rcpt:?}: {e}"))?;
            let address = mailbox.email.to_string();
            if !self.delivered.contains(&address) && !self.refused.contains(&address) {
                to.push(mailbox.email);
            }
        }
        Ok((from.email, to))
    }

    /// The words of a switch, for subjects and notifiers: its state
    /// (`Problem`, `OK`, `Removed`) and its severity (`CRITICAL`, …).
    pub fn state_words(event: &Event) -> (&'static str, &'static str) {
        match event.transition {
            Transition::Failing => ("Problem", event.result.state.as_str()),
            Transition::Recovered { .. } => ("OK", "OK"),
            Transition::Unmonitored { .. } => ("Removed", event.result.state.as_str()),
        }
    }

    /// The Problem or OK mail of a state switch: the Problem mail's
    /// Message-ID comes from the instance and its `since`, and the OK mail
    /// replies to the same one.
    pub fn alert(emails: &Emails, event: &Event) -> Mail {
        let result = &event.result;
        let (state, severity) = Mail::state_words(event);
        let name = named(&event.check, &event.dest);
        let subject = render_subject(
            &subject_template(&emails.subject_tpl, &event.check, &event.dest),
            &[
                ("state", state),
                ("check", &event.check),
                ("dest", &event.dest),
                ("severity", severity),
            ],
        );
        let mut body = String::new();
        if let Some(late) = &event.late {
            late_note(late, &mut body);
        }
        match &event.transition {
            Transition::Failing => {
                let _ = writeln!(body, "{name} is failing: {severity}.\n");
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
                // 0: the runs of an outage that ended unseen are not known.
                let runs = match failed_runs {
                    0 => String::new(),
                    n => format!(" ({})", count(*n as usize, "failed run", "failed runs")),
                };
                let _ = writeln!(
                    body,
                    "{name} recovered after {}{runs}.\n",
                    human_duration(*after)
                );
                let _ = writeln!(body, "Check:     {} ({})", event.check, event.id);
                let _ = writeln!(body, "Target:    {}", event.dest);
                let _ = writeln!(body, "State:     OK");
                let _ = writeln!(body, "Failing:   since {}", human_time(event.since));
                let _ = writeln!(body, "Recovered: {}", human_time(result.started));
            }
            Transition::Unmonitored { after } => {
                let _ = writeln!(
                    body,
                    "{name} is no longer monitored: its check left the configuration while failing, after {}.\n",
                    human_duration(*after)
                );
                let _ = writeln!(body, "Check:     {} ({})", event.check, event.id);
                let _ = writeln!(body, "Failing:   since {}", human_time(event.since));
                let _ = writeln!(body, "Last state: {severity}");
            }
        }
        let _ = write!(body, "\nOutput:\n{}", indented_output(&result.output()));
        held_list(&mut body, &event.held, &event.transition);
        let mut mail = Mail::new(emails, subject, body, result.started);
        let thread = thread_id(&emails.from, &event.id, event.since);
        match event.transition {
            Transition::Failing => mail.message_id = thread,
            // The OK mail and the "no longer monitored" one close the
            // thread: that of the mail that told the problem.
            Transition::Recovered { .. } | Transition::Unmonitored { .. } => {
                mail.in_reply_to = Some(event.reply_to.clone().unwrap_or(thread))
            }
        }
        mail
    }

    /// A reminder (`renotify_every`) of an outage told and still going,
    /// in the thread of the mail that told it: "still failing after
    /// 4h 00m, 240 failed runs".
    pub fn reminder(
        emails: &Emails,
        event: &Event,
        after: Duration,
        failed_runs: u32,
        reminders: u32,
    ) -> Mail {
        let result = &event.result;
        let severity = result.state.as_str();
        let name = named(&event.check, &event.dest);
        let subject = render_subject(
            &subject_template(&emails.subject_tpl, &event.check, &event.dest),
            &[
                ("state", "Still failing"),
                ("check", &event.check),
                ("dest", &event.dest),
                ("severity", severity),
            ],
        );
        let mut body = String::new();
        let _ = writeln!(
            body,
            "{name} is still failing after {}, {}: {severity}.\n",
            human_duration(after),
            count(failed_runs as usize, "failed run", "failed runs")
        );
        let _ = writeln!(body, "Check:    {} ({})", event.check, event.id);
        let _ = writeln!(body, "Target:   {}", event.dest);
        let _ = writeln!(body, "State:    {severity}");
        let _ = writeln!(body, "Since:    {}", human_time(event.since));
        let _ = writeln!(body, "Reminder: {} (picomon ack stops them)", reminders + 1);
        let _ = write!(body, "\nOutput:\n{}", indented_output(&result.output()));
        let mut mail = Mail::new(emails, subject, body, result.started);
        mail.in_reply_to = Some(
            event
                .reply_to
                .clone()
                .unwrap_or_else(|| thread_id(&emails.from, &event.id, event.since)),
        );
        mail
    }

    /// The one mail of a storm: every switch on one line (check, target,
    /// severity, first output line). A Problem digest has a Message-ID of
    /// its own, which each instance keeps to reply to; an OK digest
    /// replies to every mail that told one of its problems.
    pub fn digest(emails: &Emails, digest: &Digest) -> Mail {
        let n = digest.events.len();
        let mut dests: Vec<&str> = digest.events.iter().map(|e| e.dest.as_str()).collect();
        dests.sort_unstable();
        dests.dedup();
        let worst = digest
            .events
            .iter()
            .map(|e| e.result.state)
            .max()
            .unwrap_or(crate::check::State::Ok);
        let (state, severity) = match digest.recovered {
            true => ("OK", "OK"),
            false => ("Problem", worst.as_str()),
        };
        let checks = count(n, "check", "checks");
        let targets = match dests.as_slice() {
            [one] => one.to_string(),
            _ => format!("{} targets", dests.len()),
        };
        let subject = render_subject(
            &emails.subject_tpl,
            &[
                ("state", state),
                ("check", &checks),
                ("dest", &targets),
                ("severity", severity),
            ],
        );
        let mut body = String::new();
        let mut parents: Vec<&str> = (digest.events.iter())
            .filter_map(|e| match &e.late {
                Some(Late::Held { parent }) => Some(parent.as_str()),
                _ => None,
            })
            .collect();
        parents.sort_unstable();
        parents.dedup();
        if !parents.is_empty() {
            let _ = writeln!(
                body,
                "This mail is late: these were held back while {}, which they depend on, {} failing; {} no longer failing.\n",
                parents.join(", "),
                if parents.len() == 1 { "was" } else { "were" },
                if parents.len() == 1 { "it is" } else { "they are" },
            );
        } else if digest.events.iter().any(|e| e.late == Some(Late::Silenced)) {
            let _ = writeln!(
                body,
                "This mail is late for some of these: a silence (or a restart of picomon) kept them back until now.\n"
            );
        }
        if let Some((failed, of)) = digest.blind {
            let _ = writeln!(
                body,
                "{failed} of the {of} monitored checks failed at the same time: picomon's own host or network is the likely cause, and monitoring may be blind. Check the monitoring host's network first.\n"
            );
        }
        let verb = match digest.recovered {
            true => "recovered",
            false => "are failing",
        };
        let _ = writeln!(
            body,
            "{} {verb} (one mail for all of them):\n",
            count(n, "check", "checks")
        );
        for event in &digest.events {
            let first = one_line(event.result.summary.lines().next().unwrap_or(""));
            let _ = write!(
                body,
                "  {:<8} {}: {first}",
                event.result.state.as_str(),
                named(&event.check, &event.dest)
            );
            match event.transition {
                Transition::Recovered { after, .. } => {
                    let _ = writeln!(body, " (failed {})", human_duration(after));
                }
                _ => {
                    let _ = writeln!(body, " (since {})", human_time(event.since));
                }
            }
            if !event.held.is_empty() {
                let _ = writeln!(
                    body,
                    "           holds back {}: {}",
                    event.held.len(),
                    event.held.join(", ")
                );
            }
        }
        let started = digest
            .events
            .iter()
            .map(|e| e.result.started)
            .min()
            .unwrap_or_else(SystemTime::now);
        let mut mail = Mail::new(emails, subject, body, started);
        if digest.recovered {
            let mut threads: Vec<String> = digest
                .events
                .iter()
                .map(|e| {
                    e.reply_to
                        .clone()
                        .unwrap_or_else(|| thread_id(&emails.from, &e.id, e.since))
                })
                .collect();
            threads.sort();
            threads.dedup();
            mail.in_reply_to = Some(threads.join(" "));
        }
        mail
    }

    /// The mail saying that an instance started flapping (no switch
    /// mails follow), or where it settled once stable for a whole window.
    pub fn flapping(
        emails: &Emails,
        instance: &crate::check::Instance,
        state: &crate::state::CheckState,
        news: crate::flapping::News,
        reply_to: Option<String>,
        now: SystemTime,
    ) -> Mail {
        use crate::flapping::News;
        let limits = instance.flap;
        let severity = match (&state.last, state.failing) {
            (_, false) => "OK",
            (Some(last), true) => last.state.as_str(),
            (None, true) => "UNKNOWN",
        };
        let state_word = match (news, state.failing) {
            (News::Started, _) => "Flapping",
            (News::Settled, true) => "Problem",
            (News::Settled, false) => "OK",
        };
        let name = named(&instance.check, &instance.dest);
        let subject = render_subject(
            &subject_template(&emails.subject_tpl, &instance.check, &instance.dest),
            &[
                ("state", state_word),
                ("check", &instance.check),
                ("dest", &instance.dest),
                ("severity", severity),
            ],
        );
        let mut body = String::new();
        match news {
            News::Started => {
                let _ = writeln!(
                    body,
                    "{name} is flapping: its result changed between OK and failing more than {} in its last {} runs.\nNo more mails about its switches until it has been stable for {} runs; then one mail says where it settled.\n",
                    count(limits.switches as usize, "time", "times"), limits.window, limits.window
                );
            }
            News::Settled => {
                let _ = writeln!(
                    body,
                    "{name} stopped flapping: stable for {} runs, it settled {}.\n",
                    limits.window,
                    if state.failing { "failing" } else { "OK" }
                );
            }
        }
        let _ = writeln!(body, "Check:    {} ({})", instance.check, instance.id);
        let _ = writeln!(body, "Target:   {}", instance.dest);
        let _ = writeln!(body, "State:    {severity}");
        if let Some(last) = &state.last {
            let _ = write!(body, "\nLast output:\n{}", indented_output(&last.output()));
        }
        let mut mail = Mail::new(emails, subject, body, now);
        mail.in_reply_to = reply_to;
        mail
    }

    /// Whether this alert, left pending by a stop, is one the saved state
    /// says was told, `open` being the threads that state holds open
    /// (`CheckState::open_thread`): a Problem (own, digest or flapping
    /// mail) whose thread is open there, or an OK whose threads are all
    /// closed there. Only alerts are ever pending.
    pub(crate) fn told(&self, open: &[String]) -> bool {
        let is_open = |thread: &str| open.iter().any(|o| o == thread);
        if is_open(&self.message_id) {
            return true;
        }
        match &self.in_reply_to {
            None => false,
            // An OK digest replies to every thread it closes.
            Some(threads) => !threads.split_whitespace().any(is_open),
        }
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

    /// The email settings of a small configuration file.
    pub(crate) fn test_emails() -> Emails {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("picomon.toml");
        std::fs::write(
            &path,
            r#"
                [emails]
                to = ["ops@example.org", "Second <oncall@example.net>"]
                from = "Picomon <picomon@example.org>"
            "#,
        )
        .expect("write config");
        crate::config::Config::load(&path).expect("config").emails
    }

    /// A switch of `check` on `dest`, for the wording tests.
    fn switch(check: &str, dest: &str, transition: Transition, late: Option<Late>) -> Event {
        let since = UNIX_EPOCH + std::time::Duration::from_secs(1000);
        Event {
            id: format!("{check}/{dest}"),
            check: check.into(),
            dest: dest.into(),
            transition,
            since,
            result: crate::check::RunResult {
                state: crate::check::State::Ok,
                exit_code: Some(0),
                summary: "fine".into(),
                perfdata: String::new(),
                details: String::new(),
                duration: std::time::Duration::ZERO,
                started: since,
            },
            reply_to: None,
            held: Vec::new(),
            late,
        }
    }

    #[test]
    fn an_ok_counts_failed_runs_rounds_its_duration_and_names_a_self_named_check_once() {
        let emails = test_emails();
        let recovered = |failed_runs| Transition::Recovered {
            after: std::time::Duration::from_millis(1980),
            failed_runs,
        };
        let ok = Mail::alert(&emails, &switch("c007", "c007", recovered(3), None));
        assert_eq!(ok.subject, "[picomon] OK: c007");
        assert!(
            ok.body
                .starts_with("c007 recovered after 2s (3 failed runs).\n"),
            "{}",
            ok.body
        );
        let ok = Mail::alert(&emails, &switch("web", "front", recovered(1), None));
        assert_eq!(ok.subject, "[picomon] OK: web on front");
        assert!(ok.body.contains("(1 failed run)"), "{}", ok.body);
    }

    #[test]
    fn a_mail_told_late_says_why_first() {
        let emails = test_emails();
        let held = Late::Held {
            parent: "uplink".into(),
        };
        let mail = Mail::alert(
            &emails,
            &switch("svc", "h1", Transition::Failing, Some(held)),
        );
        assert!(
            mail.body
                .starts_with("This mail is late: it was held back while uplink"),
            "{}",
            mail.body
        );
        let mail = Mail::alert(
            &emails,
            &switch("svc", "h1", Transition::Failing, Some(Late::Silenced)),
        );
        assert!(
            mail.body.starts_with("This mail is late: a silence"),
            "{}",
            mail.body
        );
    }

    #[test]
    fn a_thread_id_comes_from_the_instance_and_its_since_only() {
        let since = UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 42);
        let from = "Picomon <picomon@example.org>";
        let id = thread_id(from, "web check/front<1>/ipv4", since);
        assert_eq!(
            id,
            "<picomon.1700000000.000000042.web=20check=2Ffront=3C1=3E=2Fipv4@example.org>"
        );
        assert_eq!(thread_id(from, "web check/front<1>/ipv4", since), id);
        let later = since + std::time::Duration::from_nanos(1);
        assert_ne!(thread_id(from, "web check/front<1>/ipv4", later), id);
    }

    #[test]
    fn a_mail_to_several_contacts_replies_to_the_problem_mail_each_got() {
        let from = "Picomon <picomon@example.org>";
        let since = UNIX_EPOCH + std::time::Duration::from_secs(1000);
        let mut state = crate::state::CheckState {
            mailed: Some(since),
            ..Default::default()
        };
        state.threads.insert("web".into(), "<web-digest>".into());
        let own = thread_id(from, "c", since);
        let both = ["db".to_string(), "web".to_string()];
        assert_eq!(
            contact_threads(from, "c", &state, &both),
            Some(format!("{own} <web-digest>"))
        );
        assert_eq!(contact_threads(from, "c", &state, &[]), Some(own.clone()));
        // A restart keeps a pending mail of any of those threads.
        assert_eq!(
            open_threads(from, "c", &state),
            ["<web-digest>".to_string(), own]
        );
        state.mailed = None;
        assert_eq!(contact_threads(from, "c", &state, &both), None);
        assert!(open_threads(from, "c", &state).is_empty());
    }

    #[test]
    fn the_recovery_replies_to_the_problem_mail_without_being_told_its_id() {
        use crate::check::{RunResult, State};
        let emails = test_emails();
        let since = UNIX_EPOCH + std::time::Duration::from_secs(1000);
        let event = |transition, state, at| Event {
            id: "homepage/web/ipv4".into(),
            check: "homepage".into(),
            dest: "web".into(),
            transition,
            since,
            result: RunResult {
                state,
                exit_code: Some(0),
                summary: String::new(),
                perfdata: String::new(),
                details: String::new(),
                duration: std::time::Duration::ZERO,
                started: UNIX_EPOCH + std::time::Duration::from_secs(at),
            },
            reply_to: None,
            held: Vec::new(),
            late: None,
        };
        let problem = Mail::alert(&emails, &event(Transition::Failing, State::Critical, 1060));
        let ok = Mail::alert(
            &emails,
            &event(
                Transition::Recovered {
                    after: std::time::Duration::from_secs(120),
                    failed_runs: 2,
                },
                State::Ok,
                1120,
            ),
        );
        assert_eq!(problem.in_reply_to, None);
        assert_eq!(ok.in_reply_to.as_deref(), Some(problem.message_id.as_str()));
        assert_ne!(ok.message_id, problem.message_id);
        assert!(problem.message(SystemTime::now()).is_ok());
    }

    #[test]
    fn a_held_alert_is_told_when_the_saved_state_has_its_switch() {
        use crate::check::{RunResult, State};
        let emails = test_emails();
        let since = UNIX_EPOCH + std::time::Duration::from_secs(1000);
        let event = |transition| Event {
            id: "db/main/ipv4".into(),
            check: "db".into(),
            dest: "main".into(),
            transition,
            since,
            result: RunResult {
                state: State::Critical,
                exit_code: Some(2),
                summary: String::new(),
                perfdata: String::new(),
                details: String::new(),
                duration: std::time::Duration::ZERO,
                started: since,
            },
            reply_to: None,
            held: Vec::new(),
            late: None,
        };
        let problem = Mail::alert(&emails, &event(Transition::Failing));
        let ok = Mail::alert(
            &emails,
            &event(Transition::Recovered {
                after: std::time::Duration::from_secs(5),
                failed_runs: 1,
            }),
        );
        let open = vec![thread_id(&emails.from, "db/main/ipv4", since)];
        let other = vec![thread_id(
            &emails.from,
            "db/main/ipv4",
            since + std::time::Duration::from_secs(1),
        )];
        // Saved as told since then: the Problem is told, the OK is not yet.
        assert!(problem.told(&open));
        assert!(!ok.told(&open));
        // Saved not told, or told for another outage: the reverse.
        assert!(!problem.told(&[]));
        assert!(!problem.told(&other));
        assert!(ok.told(&[]));
        assert!(ok.told(&other));
        // A digest is told when the saved state keeps its Message-ID, and
        // an OK digest when every thread it closes is closed.
        let digest = Mail::new(&emails, "digest".into(), String::new(), since);
        assert!(!digest.told(&[]));
        assert!(digest.told(std::slice::from_ref(&digest.message_id)));
        let mut ok_digest = Mail::new(&emails, "ok".into(), String::new(), since);
        ok_digest.in_reply_to = Some(format!("{} {}", open[0], digest.message_id));
        assert!(ok_digest.told(&[]));
        assert!(!ok_digest.told(std::slice::from_ref(&digest.message_id)));
    }

    #[test]
    fn message_ids_are_unique_and_use_the_from_domain() {
        let a = new_message_id("Picomon <picomon@example.org>");
        let b = new_message_id("Picomon <picomon@example.org>");
        assert_ne!(a, b);
        assert!(a.starts_with('<') && a.ends_with("@example.org>"), "{a}");
    }
}
