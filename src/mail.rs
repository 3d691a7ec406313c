//! Emails: building them (subjects from templates, threading headers,
//! bodies) and delivering them through an `Outbox`, a thread of its own
//! that sends in order, retries until the server accepts, and, with a
//! spool directory, keeps every message on disk until it was accepted.

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::PoolConfig;
use lettre::{Message, SmtpTransport, Transport};
use serde::{Deserialize, Serialize};

use crate::config::{Emails, SmtpSecurity};
use crate::files;
use crate::host::address_of;
use crate::human::{human_duration, human_time};
use crate::state::{Event, Transition};

/// What an unknown `{placeholder}` renders as.
pub const NO_SUBSTITUTION: &str = "<no substitution>";
/// Longest subject, in characters.
const SUBJECT_MAX: usize = 200;
/// Most plugin output put in a body, in bytes.
const OUTPUT_MAX: usize = 8 * 1024;
/// One SMTP conversation step may take this long before it is a failure.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

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
            Transition::Unmonitored { .. } => ("Removed", result.state.as_str()),
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
            Transition::Unmonitored { after } => {
                let _ = writeln!(
                    body,
                    "{} on {} is no longer monitored: its check left the configuration while failing, after {}.\n",
                    event.check,
                    event.dest,
                    human_duration(*after)
                );
                let _ = writeln!(body, "Check:     {} ({})", event.check, event.id);
                let _ = writeln!(body, "Failing:   since {}", human_time(event.since));
                let _ = writeln!(body, "Last state: {severity}");
            }
        }
        let _ = write!(body, "\nOutput:\n{}", indented_output(&result.output()));
        let mut mail = Mail::new(emails, subject, body, result.started);
        if event.transition != Transition::Failing {
            mail.in_reply_to = thread.map(str::to_string);
        }
        mail
    }

    /// The lettre message, with a note on how long it waited if a delivery
    /// attempt failed before.
    fn message(&self, now: SystemTime) -> Result<Message, String> {
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

/// Spooled messages, one JSON file each, named so that lexical order is
/// queueing order.
#[derive(Clone)]
struct Spool {
    dir: PathBuf,
}

impl Spool {
    fn open(dir: &Path) -> anyhow::Result<Spool> {
        std::fs::create_dir_all(dir.join("rejected"))
            .with_context(|| format!("cannot create the mail spool {}", dir.display()))?;
        Ok(Spool {
            dir: dir.to_path_buf(),
        })
    }

    fn save(&self, mail: &Mail, path: Option<&Path>) -> std::io::Result<PathBuf> {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let nanos = mail
                    .queued_at
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos();
                let n = COUNT.fetch_add(1, Ordering::Relaxed);
                self.dir.join(format!("{nanos:024}-{n:06}.json"))
            }
        };
        let json = serde_json::to_vec_pretty(mail).map_err(std::io::Error::other)?;
        files::write_atomic(&path, &json)?;
        Ok(path)
    }

    /// Everything still queued, oldest first; unreadable files set aside.
    fn load(&self) -> Vec<(Mail, Option<PathBuf>)> {
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect(),
            Err(e) => {
                log::error!("{}: cannot list the mail spool: {e}", self.dir.display());
                return Vec::new();
            }
        };
        paths.sort();
        let mut mails = Vec::new();
        for path in paths {
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Mail>(&b).map_err(|e| e.to_string()));
            match parsed {
                Ok(mail) => mails.push((mail, Some(path))),
                Err(e) => {
                    log::error!(
                        "{}: unreadable spooled mail, set aside: {e}",
                        path.display()
                    );
                    self.set_aside(&path);
                }
            }
        }
        mails
    }

    fn remove(&self, path: &Path) {
        if let Err(e) = std::fs::remove_file(path).and_then(|_| files::sync_dir(&self.dir)) {
            log::error!(
                "{}: cannot remove a sent mail from the spool: {e}",
                path.display()
            );
        }
    }

    fn set_aside(&self, path: &Path) {
        let Some(name) = path.file_name() else { return };
        let to = self.dir.join("rejected").join(name);
        if let Err(e) = std::fs::rename(path, &to) {
            log::error!("{}: cannot move to {}: {e}", path.display(), to.display());
        }
    }
}

enum Command {
    Send(Box<Mail>, Option<PathBuf>),
    Reconfigure(Box<Emails>),
    Stop(Instant),
}

/// The delivery queue: mails go in from any thread and come out at the
/// SMTP server, in order, however long that takes.
pub struct Outbox {
    tx: Sender<Command>,
    spool: Option<Spool>,
    emails: Emails,
    thread: Option<JoinHandle<()>>,
}

impl Outbox {
    /// Starts delivery; with `spool_dir`, what an earlier run left queued
    /// there is sent first.
    pub fn start(emails: Emails, spool_dir: Option<&Path>) -> anyhow::Result<Outbox> {
        let spool = spool_dir.map(Spool::open).transpose()?;
        let queued = spool.as_ref().map(Spool::load).unwrap_or_default();
        if !queued.is_empty() {
            log::info!("{} mails still queued from before", queued.len());
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let delivery = Delivery {
            emails: emails.clone(),
            transport: None,
            queue: queued.into(),
            spool: spool.clone(),
            hello: crate::host::fqdn().to_string(),
        };
        let thread = std::thread::Builder::new()
            .name("outbox".into())
            .spawn(move || delivery.run(rx))
            .context("cannot start the mail delivery thread")?;
        Ok(Outbox {
            tx,
            spool,
            emails,
            thread: Some(thread),
        })
    }

    /// Queues `mail` (on disk first, with a spool). With no recipients
    /// configured, it is only logged.
    pub fn send(&self, mail: Mail) {
        if mail.to.is_empty() {
            log::info!("mail not sent (emails.to is empty): {}", mail.subject);
            log::debug!("body of the mail not sent:\n{}", mail.body);
            return;
        }
        let path = match &self.spool {
            Some(spool) => match spool.save(&mail, None) {
                Ok(path) => Some(path),
                Err(e) => {
                    log::error!(
                        "cannot spool mail {:?} in {}: {e}; keeping it in memory",
                        mail.subject,
                        spool.dir.display()
                    );
                    None
                }
            },
            None => None,
        };
        if self.tx.send(Command::Send(Box::new(mail), path)).is_err() {
            log::error!("the mail delivery thread is gone");
        }
    }

    pub fn emails(&self) -> &Emails {
        &self.emails
    }

    /// New SMTP settings and recipients, after a reload.
    pub fn reconfigure(&mut self, emails: Emails) {
        self.emails = emails.clone();
        let _ = self.tx.send(Command::Reconfigure(Box::new(emails)));
    }

    /// Sends what can be sent within `grace`, then stops; the rest stays
    /// in the spool (or is lost, without one, and logged).
    pub fn stop(mut self, grace: Duration) {
        let _ = self.tx.send(Command::Stop(Instant::now() + grace));
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("the mail delivery thread panicked");
            }
        }
    }
}

/// The delivery thread's state.
struct Delivery {
    emails: Emails,
    transport: Option<SmtpTransport>,
    queue: VecDeque<(Mail, Option<PathBuf>)>,
    spool: Option<Spool>,
    hello: String,
}

/// How one attempt ended.
enum Attempt {
    Sent,
    /// Retry later: connection refused, timeout, 4xx.
    Transient(String),
    /// The server said no for good (5xx), or the message cannot be built.
    Permanent(String),
}

impl Delivery {
    fn run(mut self, rx: Receiver<Command>) {
        let mut next_attempt = Instant::now();
        let mut stop_at: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if !self.queue.is_empty() && now >= next_attempt {
                match self.attempt() {
                    Attempt::Sent | Attempt::Permanent(_) => next_attempt = now,
                    Attempt::Transient(_) => next_attempt = now + self.emails.retry,
                }
                continue;
            }
            if let Some(deadline) = stop_at {
                if self.queue.is_empty() || now >= deadline || next_attempt >= deadline {
                    self.abandon();
                    return;
                }
            }
            let wake = match (self.queue.is_empty(), stop_at) {
                (true, None) => None,
                (true, Some(deadline)) => Some(deadline),
                (false, Some(deadline)) => Some(next_attempt.min(deadline)),
                (false, None) => Some(next_attempt),
            };
            let cmd = match wake {
                Some(at) => rx.recv_deadline(at),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match cmd {
                Ok(Command::Send(mail, path)) => self.queue.push_back((*mail, path)),
                Ok(Command::Reconfigure(emails)) => {
                    self.emails = *emails;
                    self.transport = None;
                    next_attempt = Instant::now();
                }
                Ok(Command::Stop(deadline)) => stop_at = Some(deadline),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    stop_at.get_or_insert_with(Instant::now);
                }
            }
        }
    }

    /// Tries to deliver the oldest queued mail.
    fn attempt(&mut self) -> Attempt {
        let queued = self.queue.len();
        let Some((mail, path)) = self.queue.front_mut() else {
            return Attempt::Sent;
        };
        let outcome = match mail.message(SystemTime::now()) {
            Err(e) => Attempt::Permanent(format!("cannot build the message: {e}")),
            Ok(message) => match transport(&self.emails, &self.hello, &mut self.transport) {
                Err(e) => Attempt::Transient(e),
                Ok(transport) => match transport.send(&message) {
                    Ok(_) => Attempt::Sent,
                    Err(e) if e.is_permanent() && !is_authentication(&e) => {
                        Attempt::Permanent(smtp_error(&e))
                    }
                    Err(e) => Attempt::Transient(smtp_error(&e)),
                },
            },
        };
        let host = format!("{}:{}", self.emails.smtp_host, self.emails.smtp_port);
        match &outcome {
            Attempt::Sent => {
                log::info!("mail sent to {}: {}", mail.to.join(", "), mail.subject);
                if let (Some(spool), Some(path)) = (&self.spool, path.as_ref()) {
                    spool.remove(path);
                }
                self.queue.pop_front();
            }
            Attempt::Permanent(e) => {
                log::error!("mail refused by {host}, kept aside: {}: {e}", mail.subject);
                match (&self.spool, path.as_ref()) {
                    (Some(spool), Some(path)) => spool.set_aside(path),
                    _ => log::error!("refused mail, for the record:\n{}", mail.body),
                }
                self.queue.pop_front();
            }
            Attempt::Transient(e) => {
                let level = match e.contains("(53") {
                    true => log::Level::Error,
                    false => log::Level::Warn,
                };
                log::log!(
                    level,
                    "mail delivery to {host} failed, retrying in {}: {e} ({} queued)",
                    human_duration(self.emails.retry),
                    queued
                );
                mail.last_error = Some(e.clone());
                if let (Some(spool), Some(p)) = (&self.spool, path.as_ref()) {
                    if let Err(e) = spool.save(mail, Some(p)) {
                        log::error!("{}: cannot update spooled mail: {e}", p.display());
                    }
                }
                // A broken connection must not be reused.
                self.transport = None;
            }
        }
        outcome
    }

    fn abandon(&mut self) {
        if self.queue.is_empty() {
            return;
        }
        match &self.spool {
            Some(spool) => log::warn!(
                "stopping with {} mails unsent; they stay in {} for the next start",
                self.queue.len(),
                spool.dir.display()
            ),
            None => {
                for (mail, _) in &self.queue {
                    log::error!(
                        "stopping: mail lost (no state_dir to keep it): {}",
                        mail.subject
                    );
                }
            }
        }
    }
}

/// 530 to 539 refuse the sender's credentials, not the message: a wrong
/// password must not throw alerts away, so those are retried (and logged
/// as errors) until the configuration is fixed.
fn is_authentication(e: &lettre::transport::smtp::Error) -> bool {
    use lettre::transport::smtp::response::Category;
    e.status()
        .is_some_and(|code| code.category == Category::Unspecified3)
}

fn smtp_error(e: &lettre::transport::smtp::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    one_line(&text)
}

/// The SMTP transport for `emails`, built once and kept (with its pooled
/// connection) until a failure or a reload.
fn transport<'a>(
    emails: &Emails,
    hello: &str,
    slot: &'a mut Option<SmtpTransport>,
) -> Result<&'a SmtpTransport, String> {
    if slot.is_none() {
        let tls = || -> Result<TlsParameters, String> {
            let mut params = TlsParameters::builder(emails.smtp_host.clone());
            if let Some(pem) = &emails.smtp_ca_pem {
                let cert = Certificate::from_pem(pem).map_err(|e| format!("smtp_ca_file: {e}"))?;
                params = params.add_root_certificate(cert);
            }
            params.build().map_err(|e| format!("TLS setup: {e}"))
        };
        let mut builder = SmtpTransport::builder_dangerous(&emails.smtp_host)
            .port(emails.smtp_port)
            .timeout(Some(SMTP_TIMEOUT))
            .hello_name(ClientId::Domain(hello.to_string()))
            .pool_config(PoolConfig::new().max_size(1).idle_timeout(emails.keepalive));
        builder = match emails.smtp_security {
            SmtpSecurity::None => builder.tls(Tls::None),
            SmtpSecurity::Starttls => builder.tls(Tls::Required(tls()?)),
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
        };
        if let (Some(user), Some(password)) = (&emails.smtp_user, &emails.smtp_password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        *slot = Some(builder.build());
    }
    slot.as_ref().ok_or_else(|| "no SMTP transport".to_string())
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
