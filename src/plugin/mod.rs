//! Built-in monitoring plugins: checks that no Debian plugin does well
//! (SOA serials across nameservers, an OpenVPN handshake with a tls-auth or
//! tls-crypt key), or that a platform's plugins lack (https: NixOS has no
//! check_curl). They run as `picomon plugin NAME …`, a child process
//! like any other plugin, so they get the same timeout, process-group kill
//! and output cap, and follow the Nagios plugin API (Icinga can run them).

pub(crate) mod dns_zone;
mod http1;
pub(crate) mod https;
pub(crate) mod openvpn;

use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

use crate::check::State;
use crate::cli::Plugin;

/// The verdict of a built-in plugin: the state and the text it prints.
pub(crate) struct Verdict {
    pub state: State,
    /// First line: `NAME STATE - summary`; then details.
    pub text: String,
}

/// Runs one built-in plugin, prints its verdict, exits with its code.
pub(crate) fn run(plugin: Plugin) -> ExitCode {
    let verdict = match plugin {
        Plugin::DnsZone(args) => dns_zone::run(&args),
        Plugin::Openvpn(args) => openvpn::run(&args),
        Plugin::Https(args) => https::run(&args),
    };
    println!("{}", verdict.text.trim_end());
    ExitCode::from(match verdict.state {
        State::Ok => 0,
        State::Warning => 1,
        State::Critical => 2,
        State::Unknown => 3,
    })
}

/// How long a plugin may work: a little less than the timeout picomon
/// kills it at, so that it reports what it found instead of being killed.
pub(crate) fn working_time(timeout: Duration) -> Duration {
    let margin = (timeout / 10).min(Duration::from_millis(500));
    timeout.saturating_sub(margin)
}

/// A UDP socket of the address family of `server`, connected to it, so
/// that only its answers are read.
pub(crate) fn udp_to(server: SocketAddr) -> Result<UdpSocket, String> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
        SocketAddr::V6(_) => ([0u16; 8], 0).into(),
    };
    let socket = UdpSocket::bind(local).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket
        .connect(server)
        .map_err(|e| format!("cannot reach {server}: {e}"))?;
    Ok(socket)
}

/// What one wait on a connected UDP socket brought.
pub(crate) enum Received {
    /// A datagram of this many bytes.
    Datagram(usize),
    /// Nothing within the wait.
    Nothing,
    /// The server's host said nothing listens on that port (ICMP port
    /// unreachable, reported on a connected socket).
    Refused,
}

/// Waits up to `wait` (at least a millisecond: zero would mean forever)
/// for one datagram on `socket`.
pub(crate) fn receive(
    socket: &UdpSocket,
    buf: &mut [u8],
    wait: Duration,
) -> Result<Received, String> {
    socket
        .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
        .map_err(|e| format!("cannot wait for an answer: {e}"))?;
    match socket.recv(buf) {
        Ok(n) => Ok(Received::Datagram(n)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(Received::Nothing)
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(Received::Refused),
        Err(e) => Err(format!("cannot receive: {e}")),
    }
}

/// A query id or session id: unpredictable enough that a stray packet is
/// not taken for the answer (not a secret).
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    use std::hash::{BuildHasher, Hasher};
    let mut out = [0u8; N];
    for chunk in out.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        let bytes = h.finish().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    out
}
