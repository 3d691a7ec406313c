//! One SMTP session, spoken recipient by recipient through lettre's
//! `SmtpConnection`. lettre's `SmtpTransport` gives up on the whole message
//! when one RCPT is refused, and writes the final "." apart from the data,
//! so that Nagle's algorithm holds it until the server's delayed ACK
//! (~40 ms a mail: the delivery rate, and the window in which a crash
//! repeats a mail). Here the data and the final "." leave in one write.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{Certificate, SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail as MailFrom, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Category;
use lettre::Address;

use crate::config::{Emails, SmtpSecurity};
use crate::mail::one_line;

/// Why no conversation about a mail could take place, or why it broke off:
/// nothing is known to have been delivered.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) why: String,
    /// The server refused the credentials (530 to 539): only the operator
    /// can fix that, so it is logged as an error.
    pub(crate) credentials: bool,
}

/// How one attempt to hand a mail to the server ended.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// The server could not be reached; TLS, EHLO or AUTH failed; or the
    /// connection broke or timed out.
    NoSession(Failure),
    /// The server refused the message as a whole: at MAIL FROM, at DATA or
    /// after the data; 5xx is `permanent`, 4xx is not.
    Refused { reply: String, permanent: bool },
    /// The server answered recipient by recipient, and took the data for
    /// those it accepted (if any).
    Answered(Answers),
}

/// The server's answers to RCPT, by recipient address.
#[derive(Debug, Default)]
pub(crate) struct Answers {
    pub(crate) accepted: Vec<String>,
    /// 5xx: refused for good, with the reply.
    pub(crate) refused: Vec<(String, String)>,
    /// 4xx: refused for now, with the reply.
    pub(crate) deferred: Vec<(String, String)>,
}

/// An open SMTP connection, greeted, secured and authenticated.
pub(crate) struct Session {
    conn: SmtpConnection,
    last_used: Instant,
}

/// What the server said, when it said something.
enum Reply {
    Code { text: String, permanent: bool },
    Credentials(String),
}

/// A server's reply to a command, or the failure of the session.
fn reply_of(e: &lettre::transport::smtp::Error) -> Result<Reply, Failure> {
    let text = error_text(e);
    match e.status() {
        Some(code) if code.category == Category::Unspecified3 => Ok(Reply::Credentials(text)),
        Some(_) => Ok(Reply::Code {
            text,
            permanent: e.is_permanent(),
        }),
        None => Err(Failure {
            why: text,
            credentials: false,
        }),
    }
}

fn failure(e: lettre::transport::smtp::Error) -> Failure {
    let credentials = e
        .status()
        .is_some_and(|code| code.category == Category::Unspecified3);
    Failure {
        why: error_text(&e),
        credentials,
    }
}

/// The error and its causes, on one line.
fn error_text(e: &lettre::transport::smtp::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        // lettre repeats the server's reply in the source.
        let said = cause.to_string();
        if !text.contains(&said) {
            let _ = write!(text, ": {said}");
        }
        source = cause.source();
    }
    one_line(&text)
}

/// The message as the DATA phase sends it: dot-stuffed (a line starting
/// with "." gets another), then the final ".", all in one buffer.
fn data_block(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + message.len() / 64 + 8);
    let mut line_start = true;
    let mut rest = message;
    while !rest.is_empty() {
        if line_start && rest.starts_with('.') {
            out.push('.');
        }
        match rest.find("\r\n") {
            Some(end) => {
                out.push_str(&rest[..end + 2]);
                rest = &rest[end + 2..];
                line_start = true;
            }
            None => {
                out.push_str(rest);
                rest = "";
            }
        }
    }
    out.push_str("\r\n.\r\n");
    out
}

impl Session {
    /// Connects to the server of `emails`, with TLS and AUTH as configured.
    pub(crate) fn open(
        emails: &Emails,
        hello: &str,
        timeout: Duration,
    ) -> Result<Session, Failure> {
        let setup = |why: String| Failure {
            why,
            credentials: false,
        };
        let tls = || -> Result<TlsParameters, Failure> {
            let mut params = TlsParameters::builder(emails.smtp_host.clone());
            if let Some(pem) = &emails.smtp_ca_pem {
                let cert =
                    Certificate::from_pem(pem).map_err(|e| setup(format!("smtp_ca_file: {e}")))?;
                params = params.add_root_certificate(cert);
            }
            params.build().map_err(|e| setup(format!("TLS setup: {e}")))
        };
        let (wrapper, starttls) = match emails.smtp_security {
            SmtpSecurity::None => (None, None),
            SmtpSecurity::Starttls => (None, Some(tls()?)),
            SmtpSecurity::Tls => (Some(tls()?), None),
        };
        let client = ClientId::Domain(hello.to_string());
        let mut conn = SmtpConnection::connect(
            (emails.smtp_host.as_str(), emails.smtp_port),
            Some(timeout),
            &client,
            wrapper.as_ref(),
            None,
        )
        .map_err(failure)?;
        if let Some(params) = &starttls {
            conn.starttls(params, &client).map_err(failure)?;
        }
        if let (Some(user), Some(password)) = (&emails.smtp_user, &emails.smtp_password) {
            let credentials = Credentials::new(user.clone(), password.clone());
            conn.auth(DEFAULT_MECHANISMS, &credentials)
                .map_err(failure)?;
        }
        Ok(Session {
            conn,
            last_used: Instant::now(),
        })
    }

    /// How long the connection has been idle.
    pub(crate) fn idle_since(&self) -> Instant {
        self.last_used
    }

    /// The longest any one step (a command and its reply) may take.
    pub(crate) fn set_step_timeout(&mut self, timeout: Duration) -> Result<(), Failure> {
        self.conn.set_timeout(Some(timeout)).map_err(|e| Failure {
            why: format!("cannot set the SMTP timeout: {e}"),
            credentials: false,
        })
    }

    /// Says goodbye (QUIT) and closes the connection.
    pub(crate) fn close(mut self) {
        let _ = self.conn.quit();
    }

    /// Offers `message` from `from` to each of `to`; sends the data when
    /// at least one accepted.
    pub(crate) fn send(&mut self, from: &Address, to: &[Address], message: &[u8]) -> Attempt {
        let attempt = self.transaction(from, to, message);
        self.last_used = Instant::now();
        attempt
    }

    fn transaction(&mut self, from: &Address, to: &[Address], message: &[u8]) -> Attempt {
        let mut params = Vec::new();
        let info = self.conn.server_info();
        let ascii = |a: &Address| AsRef::<str>::as_ref(a).is_ascii();
        if !ascii(from) || !to.iter().all(ascii) {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Attempt::Refused {
                    reply: "a non-ASCII address, and the server does not offer SMTPUTF8".into(),
                    permanent: true,
                };
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        if !message.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Attempt::Refused {
                    reply: "a non-ASCII message, and the server does not offer 8BITMIME".into(),
                    permanent: true,
                };
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        if let Err(e) = self.conn.command(MailFrom::new(Some(from.clone()), params)) {
            return self.refused(&e);
        }
        let mut answers = Answers::default();
        for rcpt in to {
            match self.conn.command(Rcpt::new(rcpt.clone(), Vec::new())) {
                Ok(_) => answers.accepted.push(rcpt.to_string()),
                Err(e) => match reply_of(&e) {
                    Ok(Reply::Code {
                        text,
                        permanent: true,
                    }) => answers.refused.push((rcpt.to_string(), text)),
                    Ok(Reply::Code { text, .. }) => answers.deferred.push((rcpt.to_string(), text)),
                    Ok(Reply::Credentials(why)) => {
                        return Attempt::NoSession(Failure {
                            why,
                            credentials: true,
                        })
                    }
                    Err(f) => return Attempt::NoSession(f),
                },
            }
        }
        if answers.accepted.is_empty() {
            return match self.reset() {
                Ok(()) => Attempt::Answered(answers),
                Err(f) => Attempt::NoSession(f),
            };
        }
        if let Err(e) = self.conn.command(Data) {
            return self.refused(&e);
        }
        let sent = match std::str::from_utf8(message) {
            Ok(text) => self.conn.command(data_block(text)),
            // Never for what lettre builds; lettre's own (two writes) then.
            Err(_) => self.conn.message(message),
        };
        match sent {
            Ok(_) => Attempt::Answered(answers),
            Err(e) => self.refused(&e),
        }
    }

    /// The attempt after an error reply to a command of the transaction,
    /// which is reset so that the connection can carry the next mail.
    fn refused(&mut self, e: &lettre::transport::smtp::Error) -> Attempt {
        match reply_of(e) {
            Ok(Reply::Code { text, permanent }) => match self.reset() {
                Ok(()) => Attempt::Refused {
                    reply: text,
                    permanent,
                },
                Err(f) => Attempt::NoSession(f),
            },
            Ok(Reply::Credentials(why)) => Attempt::NoSession(Failure {
                why,
                credentials: true,
            }),
            Err(f) => Attempt::NoSession(f),
        }
    }

    fn reset(&mut self) -> Result<(), Failure> {
        self.conn.command(Rset).map(|_| ()).map_err(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_block_is_dot_stuffed_and_ends_with_the_final_dot() {
        assert_eq!(data_block("a\r\n.b\r\nc."), "a\r\n..b\r\nc.\r\n.\r\n");
        assert_eq!(data_block(".\r\n"), "..\r\n\r\n.\r\n");
        assert_eq!(data_block("x\r\n"), "x\r\n\r\n.\r\n");
    }
}
