//! `picomon plugin https`: is a web server up over TLS, with a certificate
//! worth trusting? It connects to the given address, shakes hands with
//! rustls (SNI and Host: the vhost, else the address), verifies the chain
//! against the system's CAs or a `--ca-file` and the name, judges the
//! leaf certificate's expiry, then GETs the page and judges its status and
//! body. Built in because nixpkgs' monitoring-plugins has no check_curl
//! (no libcurl), and check_http cannot verify a certificate: so https
//! checks need no plugin package at all.

use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    SignatureScheme, StreamOwned,
};
use x509_cert::der::Decode;

use super::http1::{self, Failure};
use super::{working_time, Verdict};
use crate::check::State;
use crate::cli::HttpsArgs;

const DAY: i64 = 86_400;

pub(crate) fn run(args: &HttpsArgs) -> Verdict {
    let started = Instant::now();
    let budget = working_time(args.timeout);
    let server = SocketAddr::new(args.addr, args.port);
    let say = |state: State, text: String| Verdict {
        state,
        text: format!("HTTPS {state} - {text}"),
    };
    let setup = match Setup::new(args) {
        Ok(setup) => setup,
        Err(why) => return say(State::Unknown, why),
    };
    let at = match &args.vhost {
        Some(name) => format!("{name} at {server}"),
        None => server.to_string(),
    };
    match fetch(&setup, server, started + budget, budget) {
        Ok(fetched) => {
            let (state, summary) = judge(&fetched, &Expected::of(args), SystemTime::now());
            let mut text = format!("HTTPS {state} - {summary}");
            if let Ok(not_after) = &fetched.not_after {
                text.push_str(&format!("\n{at}: certificate not after {not_after}"));
            }
            Verdict { state, text }
        }
        Err(why) => say(State::Critical, format!("{at}: {why}")),
    }
}

/// What the exchange is to be judged against.
struct Expected<'a> {
    status: Option<u16>,
    string: Option<&'a str>,
    certificate_days: Option<(u32, u32)>,
}

impl<'a> Expected<'a> {
    fn of(args: &'a HttpsArgs) -> Self {
        Expected {
            status: args.status,
            string: args.string.as_deref(),
            certificate_days: args.certificate_days,
        }
    }
}

/// What one exchange brought.
struct Fetched {
    status_line: String,
    code: u16,
    size: Option<usize>,
    /// The body was cut at `BODY_CAP`: the string was searched in its start.
    cut: bool,
    /// `--string` was found in the body (true without one).
    found: bool,
    took: Duration,
    /// The leaf certificate's notAfter, or why it cannot be read.
    not_after: Result<x509_cert::time::Time, String>,
}

/// Everything made before connecting: a mistake here is the check's
/// (UNKNOWN), not the server's.
struct Setup {
    config: Arc<ClientConfig>,
    verifier: Arc<Verifier>,
    server_name: ServerName<'static>,
    request: Vec<u8>,
    string: Option<Vec<u8>>,
}

impl Setup {
    fn new(args: &HttpsArgs) -> Result<Setup, String> {
        let name = args.vhost.clone().unwrap_or_else(|| args.addr.to_string());
        let server_name = ServerName::try_from(name.clone())
            .map_err(|_| format!("--vhost {name:?} is neither a DNS name nor an IP address"))?;
        let mut host = match args.addr.is_ipv6() && args.vhost.is_none() {
            true => format!("[{name}]"),
            false => name,
        };
        if args.port != 443 {
            host.push_str(&format!(":{}", args.port));
        }
        let request = http1::request(&args.url, &host)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = match args.no_verify {
            true => None,
            false => {
                let roots = trusted(args.ca_file.as_deref())?;
                let verifier =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| format!("cannot verify certificates: {e}"))?;
                Some(verifier)
            }
        };
        let verifier = Arc::new(Verifier {
            webpki,
            provider: provider.clone(),
            leaf: Mutex::new(None),
        });
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Setup {
            config: Arc::new(config),
            verifier,
            server_name,
            request,
            string: args.string.as_ref().map(|s| s.as_bytes().to_vec()),
        })
    }
}

/// The CAs to trust: those of `ca_file`, else the system's.
fn trusted(ca_file: Option<&std::path::Path>) -> Result<RootCertStore, String> {
    let certs: Vec<CertificateDer<'static>> = match ca_file {
        Some(file) => {
            let (pem, _) = crate::files::read_small_file(file, crate::config::CA_CAP)
                .map_err(|e| format!("--ca-file: {e}"))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("--ca-file {}: {e}", file.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "--ca-file {}: no PEM certificate in it",
                    file.display()
                ));
            }
            certs
        }
        None => crate::ca_certs::system().certs.clone(),
    };
    let mut roots = RootCertStore::empty();
    let (_, unusable) = roots.add_parsable_certificates(certs);
    if roots.is_empty() {
        let why = match (ca_file, crate::ca_certs::system().errors.first()) {
            (Some(file), _) => format!("--ca-file {}: no usable CA certificate", file.display()),
            (None, Some(e)) => format!("no CA certificate to trust: {e}"),
            (None, None) => format!(
                "no CA certificate to trust in the system's store (SSL_CERT_FILE, \
                 SSL_CERT_DIR, /etc/ssl/certs; {unusable} unusable)"
            ),
        };
        return Err(why);
    }
    Ok(roots)
}

/// rustls' own verification (or none, with `--no-verify`), keeping the
/// leaf certificate as presented: its dates are told and judged even
/// when the chain is refused or not checked.
#[derive(Debug)]
struct Verifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    leaf: Mutex<Option<CertificateDer<'static>>>,
}

impl Verifier {
    fn leaf(&self) -> Option<CertificateDer<'static>> {
        self.leaf.lock().ok().and_then(|leaf| leaf.clone())
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut leaf) = self.leaf.lock() {
            *leaf = Some(end_entity.clone().into_owned());
        }
        match &self.webpki {
            Some(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    // The handshake's signatures are checked even with --no-verify: that
    // the server holds the key of the certificate it sent.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A socket whose every read and write ends by the check's deadline.
struct Timed {
    socket: TcpStream,
    deadline: Instant,
}

impl Timed {
    fn left(&self) -> io::Result<Duration> {
        match self.deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(io::ErrorKind::TimedOut.into()),
        }
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.set_read_timeout(Some(self.left()?))?;
        self.socket.read(buf)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.socket.set_write_timeout(Some(self.left()?))?;
        self.socket.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush()
    }
}

/// Connects, shakes hands and GETs the page, by `deadline`.
fn fetch(
    setup: &Setup,
    server: SocketAddr,
    deadline: Instant,
    budget: Duration,
) -> Result<Fetched, String> {
    let started = Instant::now();
    let late = || format!("no answer within {:.1} s", budget.as_secs_f64());
    let why = |e: &io::Error| match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => late(),
        io::ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
        _ => e.to_string(),
    };
    let left = deadline
        .checked_duration_since(started)
        .filter(|d| !d.is_zero())
        .ok_or_else(late)?;
    let socket = TcpStream::connect_timeout(&server, left)
        .map_err(|e| format!("cannot connect: {}", why(&e)))?;
    // Nagle would hold the request back for the handshake's last ACK.
    let _ = socket.set_nodelay(true);
    let mut stream = Timed { socket, deadline };
    let mut tls = ClientConnection::new(setup.config.clone(), setup.server_name.clone())
        .map_err(|e| format!("cannot start TLS: {e}"))?;
    let not_after = || match setup.verifier.leaf() {
        Some(leaf) => not_after(&leaf),
        None => Err("the server sent no certificate".to_string()),
    };
    while tls.is_handshaking() {
        tls.complete_io(&mut stream).map_err(|e| {
            let said = match handshake_error(&e) {
                Some(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
                    match not_after() {
                        Ok(t) => format!("invalid peer certificate: expired on {t}"),
                        Err(_) => why(&e),
                    }
                }
                _ => why(&e),
            };
            format!("TLS handshake failed: {said}")
        })?;
    }
    let not_after = not_after();
    let mut tls = StreamOwned::new(tls, stream);
    let failed = |e: Failure| match e {
        Failure::Io(e) => format!("HTTP exchange failed: {}", why(&e)),
        Failure::Bad(b) => format!("HTTP exchange failed: {b}"),
    };
    tls.write_all(&setup.request)
        .and_then(|_| tls.flush())
        .map_err(|e| failed(Failure::Io(e)))?;
    let response = http1::read_response(&mut BufReader::new(&mut tls)).map_err(failed)?;
    let took = started.elapsed();
    let found = match &setup.string {
        Some(s) => s.is_empty() || response.body.windows(s.len()).any(|w| w == s.as_slice()),
        None => true,
    };
    Ok(Fetched {
        status_line: response.status_line,
        code: response.code,
        size: response.size,
        cut: response.cut,
        found,
        took,
        not_after,
    })
}

/// The certificate error a failed handshake carries, if that is why.
fn handshake_error(e: &io::Error) -> Option<&CertificateError> {
    match e.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(e) => Some(e),
        _ => None,
    }
}

/// The leaf certificate's notAfter.
fn not_after(leaf: &CertificateDer<'_>) -> Result<x509_cert::time::Time, String> {
    x509_cert::Certificate::from_der(leaf.as_ref())
        .map(|cert| cert.tbs_certificate().validity().not_after)
        .map_err(|e| format!("the certificate cannot be read: {e}"))
}

/// The state and summary line of an exchange, at `now`.
fn judge(fetched: &Fetched, expected: &Expected, now: SystemTime) -> (State, String) {
    let mut problems = Vec::new();
    let (mut state, problem) = status_state(fetched.code, expected.status);
    problems.extend(problem);
    if let (Some(string), false) = (expected.string, fetched.found) {
        state = state.max(State::Critical);
        problems.push(match fetched.cut {
            true => format!(
                "{string:?} not found in the first {} KiB",
                http1::BODY_CAP / 1024
            ),
            false => format!("{string:?} not found"),
        });
    }
    let mut note = None;
    match &fetched.not_after {
        Ok(t) => {
            let left = seconds_left(t.to_system_time(), now);
            let (cert, problem) = certificate_state(left, expected.certificate_days);
            state = state.max(cert);
            match problem {
                Some(problem) => problems.push(problem),
                None => note = Some(certificate_note(left)),
            }
        }
        Err(why) if expected.certificate_days.is_some() => {
            state = state.max(State::Critical);
            problems.push(why.clone());
        }
        Err(_) => {}
    }
    let size = match fetched.size {
        Some(1) => "1 byte".to_string(),
        Some(n) => format!("{n} bytes"),
        None => format!("more than {} bytes", http1::BODY_CAP),
    };
    let mut summary = problems.join("; ");
    if !summary.is_empty() {
        summary.push_str("; ");
    }
    summary.push_str(&format!(
        "{}, {size} in {:.3} s",
        fetched.status_line,
        fetched.took.as_secs_f64()
    ));
    if let Some(note) = note {
        summary.push_str(&format!(", {note}"));
    }
    (state, summary)
}

/// check_curl's rules: with an expected status, only that one is OK;
/// without, 2xx and 3xx are OK, 4xx WARNING, 5xx CRITICAL (and 1xx,
/// which only a broken server ends with, OK as check_curl has it).
fn status_state(code: u16, expected: Option<u16>) -> (State, Option<String>) {
    match (expected, code) {
        (Some(want), got) if want == got => (State::Ok, None),
        (Some(want), _) => (State::Critical, Some(format!("expected status {want}"))),
        (None, 400..=499) => (State::Warning, None),
        (None, 500..=599) => (State::Critical, None),
        (None, 100..=399) => (State::Ok, None),
        (None, _) => (State::Critical, Some(format!("invalid status {code}"))),
    }
}

/// Seconds from `now` to `not_after`, negative once it has passed.
fn seconds_left(not_after: SystemTime, now: SystemTime) -> i64 {
    match not_after.duration_since(now) {
        Ok(left) => i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
        Err(past) => i64::try_from(past.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// `certificate_days = [WARN, CRIT]`: WARNING with fewer than WARN days
/// left, CRITICAL with fewer than CRIT or once expired; without it the
/// dates are not judged here (verification refuses an expired one).
fn certificate_state(left: i64, days: Option<(u32, u32)>) -> (State, Option<String>) {
    let Some((warn, crit)) = days else {
        return (State::Ok, None);
    };
    let note = certificate_note(left);
    if left <= 0 {
        (State::Critical, Some(note))
    } else if left < i64::from(crit) * DAY {
        (State::Critical, Some(format!("{note}, fewer than {crit}")))
    } else if left < i64::from(warn) * DAY {
        (State::Warning, Some(format!("{note}, fewer than {warn}")))
    } else {
        (State::Ok, None)
    }
}

/// What the certificate's remaining time is, in an operator's words.
fn certificate_note(left: i64) -> String {
    let plural = |n: i64, unit: &str| match n {
        1 => format!("1 {unit}"),
        n => format!("{n} {unit}s"),
    };
    if left <= 0 {
        format!("certificate expired {} ago", plural(-left / DAY, "day"))
    } else if left < DAY {
        format!("certificate valid for {}", plural(left / 3600, "hour"))
    } else {
        format!("certificate valid for {}", plural(left / DAY, "day"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    use crate::cli::{Cli, Command, Plugin};

    fn args(words: &[&str]) -> Result<HttpsArgs, String> {
        let argv = ["picomon", "plugin", "https"].iter().chain(words);
        match Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .command
        {
            Some(Command::Plugin {
                plugin: Plugin::Https(args),
            }) => Ok(args),
            other => Err(format!("parsed as {other:?}")),
        }
    }

    #[test]
    fn argv_defaults_and_every_option() {
        let a = args(&["-H", "192.0.2.1"]).expect("parse");
        assert_eq!((a.port, a.url.as_str()), (443, "/"));
        assert_eq!(a.timeout, Duration::from_secs(10));
        assert!(!a.no_verify && a.vhost.is_none() && a.status.is_none());

        let a = args(&[
            "-H",
            "2001:db8::1",
            "-p",
            "8443",
            "-t",
            "2.5",
            "--vhost=www.example.org",
            "--url=/login",
            "--status=302",
            "--string=-dash first",
            "--ca-file=/etc/ca.pem",
            "--certificate-days=30,7",
        ])
        .expect("parse");
        assert_eq!(a.port, 8443);
        assert_eq!(a.timeout, Duration::from_millis(2500));
        assert_eq!(a.vhost.as_deref(), Some("www.example.org"));
        assert_eq!(a.url, "/login");
        assert_eq!(a.status, Some(302));
        assert_eq!(a.string.as_deref(), Some("-dash first"));
        assert_eq!(
            a.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert_eq!(a.certificate_days, Some((30, 7)));
    }

    #[test]
    fn argv_mistakes_are_refused_naming_the_option() {
        for (words, named) in [
            (&["-H", "www.example.org"][..], "--host"),
            (&["-H", "192.0.2.1", "-C", "7,30"], "WARN >= CRIT"),
            (&["-H", "192.0.2.1", "-C", "30"], "WARN,CRIT"),
            (&["-H", "192.0.2.1", "--status=99"], "--status"),
            (
                &["-H", "192.0.2.1", "--no-verify", "--ca-file=/c"],
                "--ca-file",
            ),
        ] {
            let err = args(words).map(|_| ()).expect_err("accepted");
            assert!(err.contains(named), "{words:?}: {err}");
        }
    }

    #[test]
    fn status_is_judged_as_check_curl_does() {
        assert_eq!(status_state(200, None), (State::Ok, None));
        assert_eq!(status_state(301, None), (State::Ok, None));
        assert_eq!(status_state(404, None), (State::Warning, None));
        assert_eq!(status_state(503, None), (State::Critical, None));
        assert_eq!(status_state(404, Some(404)), (State::Ok, None));
        assert_eq!(
            status_state(200, Some(302)),
            (State::Critical, Some("expected status 302".into()))
        );
        assert_eq!(status_state(700, None).0, State::Critical);
    }

    #[test]
    fn certificate_days_warn_then_crit_then_expired() {
        let days = Some((30, 7));
        assert_eq!(certificate_state(31 * DAY, days), (State::Ok, None));
        assert_eq!(certificate_state(30 * DAY, days), (State::Ok, None));
        assert_eq!(
            certificate_state(30 * DAY - 1, days),
            (
                State::Warning,
                Some("certificate valid for 29 days, fewer than 30".into())
            )
        );
        assert_eq!(certificate_state(7 * DAY, days).0, State::Warning);
        assert_eq!(
            certificate_state(7 * DAY - 1, days),
            (
                State::Critical,
                Some("certificate valid for 6 days, fewer than 7".into())
            )
        );
        assert_eq!(
            certificate_state(-2 * DAY, days),
            (
                State::Critical,
                Some("certificate expired 2 days ago".into())
            )
        );
        // [0, 0]: only an expired certificate is a problem.
        assert_eq!(certificate_state(1, Some((0, 0))), (State::Ok, None));
        assert_eq!(certificate_state(0, Some((0, 0))).0, State::Critical);
        // Without certificate_days the dates are verification's business.
        assert_eq!(certificate_state(-DAY, None), (State::Ok, None));
        assert_eq!(
            certificate_note(5 * 3600 + 59),
            "certificate valid for 5 hours"
        );
        assert_eq!(certificate_note(DAY), "certificate valid for 1 day");
    }

    #[test]
    fn a_ca_file_without_a_usable_certificate_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text, why) in [
            ("empty.pem", "", "no PEM certificate"),
            (
                "key.pem",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "no PEM certificate",
            ),
            ("cut.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n", "cut.pem"),
            (
                "junk.pem",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "no usable CA certificate",
            ),
        ] {
            let file = dir.path().join(name);
            std::fs::write(&file, text).expect("write");
            let err = trusted(Some(&file)).map(|_| ()).expect_err("accepted");
            assert!(
                err.contains(why) && err.contains("--ca-file"),
                "{name}: {err}"
            );
        }
        let err = trusted(Some(dir.path()))
            .map(|_| ())
            .expect_err("a directory accepted");
        assert!(err.contains("directory"), "{err}");
    }

    fn fetched(code: u16, found: bool, not_after: Result<SystemTime, String>) -> Fetched {
        Fetched {
            status_line: format!("HTTP/1.1 {code} Whatever"),
            code,
            size: Some(612),
            cut: false,
            found,
            took: Duration::from_millis(12),
            not_after: not_after.map(|t| {
                x509_cert::time::Time::try_from(t).expect("a time a certificate can hold")
            }),
        }
    }

    #[test]
    fn the_summary_puts_what_is_wrong_first() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let in_days = |d: u64| Ok(now + Duration::from_secs(d * 86_400 + 60));
        let none = Expected {
            status: None,
            string: None,
            certificate_days: None,
        };
        assert_eq!(
            judge(&fetched(200, true, in_days(89)), &none, now),
            (
                State::Ok,
                "HTTP/1.1 200 Whatever, 612 bytes in 0.012 s, certificate valid for 89 days".into()
            )
        );
        let all = Expected {
            status: Some(200),
            string: Some("Welcome"),
            certificate_days: Some((30, 7)),
        };
        assert_eq!(
            judge(&fetched(200, true, in_days(10)), &all, now),
            (
                State::Warning,
                "certificate valid for 10 days, fewer than 30; HTTP/1.1 200 Whatever, 612 bytes in 0.012 s"
                    .into()
            )
        );
        assert_eq!(
            judge(&fetched(404, false, in_days(89)), &all, now),
            (
                State::Critical,
                "expected status 200; \"Welcome\" not found; HTTP/1.1 404 Whatever, 612 bytes in 0.012 s, \
                 certificate valid for 89 days"
                    .into()
            )
        );
        // An unreadable certificate matters only when its days are judged.
        let unreadable = fetched(200, true, Err("the certificate cannot be read".into()));
        assert_eq!(judge(&unreadable, &none, now).0, State::Ok);
        assert_eq!(judge(&unreadable, &all, now).0, State::Critical);
    }
}
