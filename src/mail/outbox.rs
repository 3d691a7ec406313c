//! Delivery: the `Outbox` hands mails to a thread of its own that sends
//! them in order, retries until the server accepts, and, with a spool,
//! keeps every mail on disk until it was accepted.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::PoolConfig;
use lettre::{SmtpTransport, Transport};

use super::message::{one_line, Mail};
use super::spool::Spool;
use crate::config::{Emails, SmtpSecurity};
use crate::human::human_duration;
use crate::state::Event;

/// One SMTP conversation step may take this long before it is a failure.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

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

    /// Queues the Problem or OK mail of a state switch, threaded by
    /// `Mail::alert`.
    pub fn alert(&self, event: &Event) {
        self.send(Mail::alert(&self.emails, event));
    }

    /// Queues the global report with `body`.
    pub fn report(&self, body: String) {
        let mail = Mail::new(
            &self.emails,
            self.emails.report_subject.clone(),
            body,
            SystemTime::now(),
        );
        self.send(mail);
    }

    /// The email settings in use (the last reload's).
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
    /// The server refused the credentials (530 to 539): retried, but
    /// logged as an error, since only the operator can fix it.
    Credentials(String),
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
                    Attempt::Transient(_) | Attempt::Credentials(_) => {
                        next_attempt = now + self.emails.retry
                    }
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
                    Err(e) if is_authentication(&e) => Attempt::Credentials(smtp_error(&e)),
                    Err(e) if e.is_permanent() => Attempt::Permanent(smtp_error(&e)),
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
            Attempt::Transient(e) | Attempt::Credentials(e) => {
                let level = match outcome {
                    Attempt::Credentials(_) => log::Level::Error,
                    _ => log::Level::Warn,
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
