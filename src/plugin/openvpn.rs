//! `picomon plugin openvpn`: is an OpenVPN server up? It sends the first
//! packet of a handshake, P_CONTROL_HARD_RESET_CLIENT_V2, and waits for the
//! server's P_CONTROL_HARD_RESET_SERVER_V2. A server with `tls-auth` or
//! `tls-crypt` silently drops anything not authenticated with its static
//! key, so the probe signs (HMAC) or wraps (AES-256-CTR + HMAC-SHA256) the
//! packet with that key, and checks the answer the same way: an answer
//! proves the server holds the key. A full packet has NUL bytes, which no
//! argv can carry to check_udp: that is why this is built in.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};

use super::{random_bytes, receive, udp_to, working_time, Received, Verdict};
use crate::check::static_key::read_static_key;
use crate::check::State;
use crate::cli::OpenvpnArgs;

const P_CONTROL_HARD_RESET_CLIENT_V2: u8 = 7;
const P_CONTROL_HARD_RESET_SERVER_V2: u8 = 8;
const OPCODE_SHIFT: u8 = 3;

/// How control packets are protected, with the keys for each way.
enum Wrap {
    Plain,
    /// HMAC-SHA1 (OpenVPN's default `auth`) with the key of each way.
    Auth {
        send: Vec<u8>,
        receive: Vec<u8>,
    },
    /// AES-256-CTR and HMAC-SHA256; (cipher, hmac) keys of each way.
    Crypt {
        send: (Vec<u8>, Vec<u8>),
        receive: (Vec<u8>, Vec<u8>),
    },
}

impl Wrap {
    fn name(&self) -> &'static str {
        match self {
            Wrap::Plain => "no tls-auth/tls-crypt",
            Wrap::Auth { .. } => "tls-auth",
            Wrap::Crypt { .. } => "tls-crypt",
        }
    }
}

type HmacSha1 = Hmac<sha1::Sha1>;
type HmacSha256 = Hmac<sha2::Sha256>;
type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    mac::<HmacSha1>(key, parts)
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    mac::<HmacSha256>(key, parts)
}

/// The tag over `parts`. HMAC takes keys of any length, so the error arm
/// is unreachable; an empty tag would match nothing anyway.
fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// AES-256-CTR with OpenVPN's synthetic IV (the tag's first 16 bytes).
fn aes_ctr(key: &[u8], iv: &[u8], data: &mut [u8]) -> Result<(), String> {
    let mut cipher = Aes256Ctr::new_from_slices(key, iv)
        .map_err(|_| "the key or IV has a wrong length".to_string())?;
    cipher.apply_keystream(data);
    Ok(())
}

pub(crate) fn run(args: &OpenvpnArgs) -> Verdict {
    let server = SocketAddr::new(args.addr, args.port);
    let say = |state: State, summary: String| Verdict {
        state,
        text: format!("OPENVPN {state} - {server}: {summary}"),
    };
    let wrap = match wrap_of(args) {
        Ok(wrap) => wrap,
        Err(why) => return say(State::Unknown, why),
    };
    match probe(server, &wrap, working_time(args.timeout)) {
        Ok(took) => say(
            State::Ok,
            format!(
                "answered the hard reset ({}) in {:.0} ms",
                wrap.name(),
                took.as_secs_f64() * 1000.0
            ),
        ),
        Err(why) => say(State::Critical, format!("{why} ({})", wrap.name())),
    }
}

fn wrap_of(args: &OpenvpnArgs) -> Result<Wrap, String> {
    let load = |flag: &str, path: &Path| {
        read_static_key(path).map_err(|e| format!("--{flag} {}: {e}", path.display()))
    };
    if let Some(path) = &args.tls_crypt {
        let key = load("tls-crypt", path)?;
        // The client sends with the second half, the server with the first.
        return Ok(Wrap::Crypt {
            send: (key.cipher(1)[..32].to_vec(), key.hmac(1)[..32].to_vec()),
            receive: (key.cipher(0)[..32].to_vec(), key.hmac(0)[..32].to_vec()),
        });
    }
    if let Some(path) = &args.tls_auth {
        let key = load("tls-auth", path)?;
        // key-direction 1 sends with the second half; 0 with the first;
        // none uses the first both ways.
        let (send, receive) = match args.key_direction {
            Some(1) => (1, 0),
            Some(_) => (0, 1),
            None => (0, 0),
        };
        return Ok(Wrap::Auth {
            send: key.hmac(send)[..20].to_vec(),
            receive: key.hmac(receive)[..20].to_vec(),
        });
    }
    Ok(Wrap::Plain)
}

/// The client's hard reset: opcode, session id, no acks, message id 0,
/// protected as `wrap` says.
fn hard_reset(wrap: &Wrap, session: &[u8; 8]) -> Result<Vec<u8>, String> {
    let op = [P_CONTROL_HARD_RESET_CLIENT_V2 << OPCODE_SHIFT];
    // No acks, then the reliable layer's message id 0.
    let body: [u8; 5] = [0, 0, 0, 0, 0];
    // Replay protection of tls-auth/tls-crypt: packet id 1 and the time.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or_default();
    let mut replay = Vec::with_capacity(8);
    replay.extend_from_slice(&1u32.to_be_bytes());
    replay.extend_from_slice(&now.to_be_bytes());
    let mut packet = Vec::with_capacity(80);
    packet.extend_from_slice(&op);
    packet.extend_from_slice(session);
    match wrap {
        Wrap::Plain => packet.extend_from_slice(&body),
        Wrap::Auth { send, .. } => {
            // The HMAC covers the replay fields first, then the rest.
            let tag = hmac_sha1(send, &[&replay, &op, session, &body]);
            packet.extend_from_slice(&tag);
            packet.extend_from_slice(&replay);
            packet.extend_from_slice(&body);
        }
        Wrap::Crypt { send, .. } => {
            packet.extend_from_slice(&replay);
            let tag = hmac_sha256(&send.1, &[&packet, &body]);
            let mut secret = body;
            aes_ctr(&send.0, &tag[..16], &mut secret)?;
            packet.extend_from_slice(&tag);
            packet.extend_from_slice(&secret);
        }
    }
    Ok(packet)
}

/// Checks that `reply` is the server's hard reset, authenticated with the
/// key, acknowledging our `session`.
fn check_reply(wrap: &Wrap, reply: &[u8], session: &[u8; 8]) -> Result<(), String> {
    let op = *reply.first().ok_or("an empty answer")? >> OPCODE_SHIFT;
    if op != P_CONTROL_HARD_RESET_SERVER_V2 {
        return Err(format!("answered opcode {op}, not a hard reset"));
    }
    let short = || format!("a {}-byte answer is too short", reply.len());
    let header = reply.get(..9).ok_or_else(short)?;
    let plain: Vec<u8> = match wrap {
        Wrap::Plain => reply[9..].to_vec(),
        Wrap::Auth { receive, .. } => {
            let tag = reply.get(9..29).ok_or_else(short)?;
            let replay = reply.get(29..37).ok_or_else(short)?;
            let rest = &reply[37..];
            if hmac_sha1(receive, &[replay, header, rest]) != tag {
                return Err("the answer's HMAC does not match the tls-auth key".into());
            }
            rest.to_vec()
        }
        Wrap::Crypt { receive, .. } => {
            let head = reply.get(..17).ok_or_else(short)?;
            let tag = reply.get(17..49).ok_or_else(short)?;
            let mut rest = reply[49..].to_vec();
            aes_ctr(&receive.0, &tag[..16], &mut rest)?;
            if hmac_sha256(&receive.1, &[head, &rest]) != tag {
                return Err("the answer does not authenticate with the tls-crypt key".into());
            }
            rest
        }
    };
    // Acks: a count, that many packet ids, then our session id.
    let acks = usize::from(*plain.first().ok_or_else(short)?);
    let start = 1 + 4 * acks;
    match plain.get(start..start + 8) {
        Some(id) if acks > 0 && id == session => Ok(()),
        _ => Err("the answer does not acknowledge our hard reset".into()),
    }
}

/// Sends the hard reset (again every second, as UDP may lose it) until
/// the server answers or `limit` passes; returns how long it took.
fn probe(server: SocketAddr, wrap: &Wrap, limit: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    let deadline = started + limit;
    let session = random_bytes::<8>();
    let packet = hard_reset(wrap, &session)?;
    let socket = udp_to(server)?;
    let mut buf = [0u8; 2048];
    let mut next_send = started;
    let mut last_problem = None;
    loop {
        let now = Instant::now();
        if now >= deadline {
            let waited = limit.as_secs_f64();
            return Err(match last_problem {
                Some(problem) => format!("{problem}; no valid answer within {waited:.1} s"),
                None => format!("no answer within {waited:.1} s"),
            });
        }
        if now >= next_send {
            socket
                .send(&packet)
                .map_err(|e| format!("cannot send: {e}"))?;
            next_send = now + Duration::from_secs(1);
        }
        let wait = next_send.min(deadline).saturating_duration_since(now);
        match receive(&socket, &mut buf, wait)? {
            Received::Datagram(n) => match check_reply(wrap, &buf[..n], &session) {
                Ok(()) => return Ok(started.elapsed()),
                Err(problem) => last_problem = Some(problem),
            },
            Received::Nothing => {}
            Received::Refused => {
                return Err("port refused (nothing listens on this UDP port)".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::static_key::StaticKey;

    fn key() -> StaticKey {
        let mut k = [0u8; 256];
        for (i, b) in k.iter_mut().enumerate() {
            *b = i as u8;
        }
        StaticKey::from_bytes(k)
    }

    #[test]
    fn a_tls_crypt_packet_unwraps_with_the_servers_receive_key() {
        let k = key();
        let client = Wrap::Crypt {
            send: (k.cipher(1)[..32].to_vec(), k.hmac(1)[..32].to_vec()),
            receive: (k.cipher(0)[..32].to_vec(), k.hmac(0)[..32].to_vec()),
        };
        let session = [1, 2, 3, 4, 5, 6, 7, 8];
        let packet = hard_reset(&client, &session).expect("packet");
        // 1 opcode + 8 session + 8 replay + 32 tag + 5 encrypted body.
        assert_eq!(packet.len(), 54);
        let mut body = packet[49..].to_vec();
        aes_ctr(&k.cipher(1)[..32], &packet[17..33], &mut body).expect("ctr");
        assert_eq!(body, [0, 0, 0, 0, 0]);
        assert_eq!(
            hmac_sha256(&k.hmac(1)[..32], &[&packet[..17], &body]),
            packet[17..49]
        );
    }
}
