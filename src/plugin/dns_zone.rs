//! `picomon plugin dns-zone`: are all nameservers of a zone up,
//! authoritative and serving the same version of it? Each nameserver
//! address is asked for the zone's SOA without recursion, all at once, so
//! one silent server costs the timeout once. DNS messages are built and
//! read by hickory-proto; the transport is a plain UDP socket, which keeps
//! the plugin synchronous and free of an async runtime.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Instant;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::{random_bytes, receive, udp_to, working_time, Received, Verdict};
use crate::check::State;
use crate::cli::DnsZoneArgs;

/// What one nameserver address said.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Serial(u32),
    NotAuthoritative(String),
    Silent(String),
}

pub(crate) fn run(args: &DnsZoneArgs) -> Verdict {
    let started = Instant::now();
    let deadline = started + working_time(args.timeout);
    let zone = match Name::from_ascii(&args.zone) {
        Ok(mut name) => {
            name.set_fqdn(true);
            name
        }
        Err(e) => return verdict(State::Unknown, &args.zone, format!("not a zone name: {e}")),
    };
    let family_ok = |addr: &IpAddr| match (args.ipv4, args.ipv6) {
        (true, _) => addr.is_ipv4(),
        (_, true) => addr.is_ipv6(),
        _ => true,
    };
    let servers: Vec<(String, IpAddr)> = if args.servers.is_empty() {
        match nameservers(&zone, deadline) {
            Ok(found) => found,
            Err(why) => return verdict(State::Critical, &args.zone, why),
        }
    } else {
        args.servers.clone()
    };
    let servers: Vec<(String, IpAddr)> =
        servers.into_iter().filter(|(_, a)| family_ok(a)).collect();
    if servers.is_empty() {
        return verdict(
            State::Critical,
            &args.zone,
            "no nameserver address of this address family".into(),
        );
    }
    let answers: Vec<Answer> = std::thread::scope(|scope| {
        let asks: Vec<_> = servers
            .iter()
            .map(|(_, addr)| {
                let zone = &zone;
                scope.spawn(move || soa_serial(*addr, zone, deadline))
            })
            .collect();
        asks.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Answer::Silent("the query thread failed".into()))
            })
            .collect()
    });
    judge(&args.zone, &servers, &answers)
}

/// The state and text for what each server said.
fn judge(zone: &str, servers: &[(String, IpAddr)], answers: &[Answer]) -> Verdict {
    let label = |(name, addr): &(String, IpAddr)| {
        if name == &addr.to_string() {
            name.clone()
        } else {
            format!("{name} ({addr})")
        }
    };
    let mut details = String::new();
    let mut failed = Vec::new();
    let mut serials = Vec::new();
    for (server, answer) in servers.iter().zip(answers) {
        let who = label(server);
        let line = match answer {
            Answer::Serial(s) => {
                serials.push((who.clone(), *s));
                format!("{who}: serial {s}")
            }
            Answer::NotAuthoritative(why) => {
                failed.push(format!("{who} is not authoritative ({why})"));
                format!("{who}: not authoritative: {why}")
            }
            Answer::Silent(why) => {
                failed.push(format!("{who} did not answer ({why})"));
                format!("{who}: no answer: {why}")
            }
        };
        let _ = writeln!(details, "{line}");
    }
    let (state, summary) = if !failed.is_empty() {
        (State::Critical, failed.join(", "))
    } else if serials.windows(2).any(|w| w[0].1 != w[1].1) {
        let list: Vec<String> = serials.iter().map(|(w, s)| format!("{w} {s}")).collect();
        (
            State::Warning,
            format!("serials differ: {}", list.join(", ")),
        )
    } else {
        let serial = serials.first().map(|(_, s)| *s).unwrap_or_default();
        (
            State::Ok,
            format!(
                "{} nameserver address(es) agree on serial {serial}",
                serials.len()
            ),
        )
    };
    let mut v = verdict(state, zone, summary);
    v.text.push('\n');
    v.text.push_str(&details);
    v
}

fn verdict(state: State, zone: &str, summary: String) -> Verdict {
    Verdict {
        state,
        text: format!("DNS-ZONE {state} - {zone}: {summary}"),
    }
}

/// Asks `addr` for the SOA of `zone`, without recursion.
fn soa_serial(addr: IpAddr, zone: &Name, deadline: Instant) -> Answer {
    let reply = match ask(
        SocketAddr::new(addr, 53),
        zone,
        RecordType::SOA,
        false,
        deadline,
    ) {
        Ok(reply) => reply,
        Err(why) => return Answer::Silent(why),
    };
    if reply.response_code() != ResponseCode::NoError {
        return Answer::NotAuthoritative(format!("answered {}", reply.response_code()));
    }
    if !reply.authoritative() {
        return Answer::NotAuthoritative("answer without the AA flag".into());
    }
    let serial = reply.answers().iter().find_map(|r| match r.data() {
        RData::SOA(soa) if r.name() == zone => Some(soa.serial()),
        _ => None,
    });
    match serial {
        Some(serial) => Answer::Serial(serial),
        None => Answer::NotAuthoritative("no SOA record for the zone in the answer".into()),
    }
}

/// One query over UDP; retried once at half time, since UDP may drop it.
fn ask(
    server: SocketAddr,
    name: &Name,
    kind: RecordType,
    recurse: bool,
    deadline: Instant,
) -> Result<Message, String> {
    let id = u16::from_le_bytes(random_bytes::<2>());
    let mut query = Message::new();
    query
        .set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(recurse)
        .add_query(Query::query(name.clone(), kind));
    let packet = query
        .to_vec()
        .map_err(|e| format!("cannot build the query: {e}"))?;
    let socket = udp_to(server)?;
    let start = Instant::now();
    let resend_at = start + deadline.saturating_duration_since(start) / 2;
    let mut resent = false;
    socket
        .send(&packet)
        .map_err(|e| format!("cannot send to {server}: {e}"))?;
    let mut buf = [0u8; 4096];
    loop {
        let now = Instant::now();
        let until = if resent { deadline } else { resend_at };
        if now >= until {
            if resent {
                return Err(format!(
                    "no reply within {:.1} s",
                    (now - start).as_secs_f64()
                ));
            }
            resent = true;
            let _ = socket.send(&packet);
            continue;
        }
        match receive(&socket, &mut buf, until - now)? {
            Received::Datagram(n) => match Message::from_vec(&buf[..n]) {
                Ok(reply) if reply.id() == id && reply.message_type() == MessageType::Response => {
                    return Ok(reply)
                }
                _ => continue, // a stray or garbled packet: keep waiting
            },
            Received::Nothing => {}
            Received::Refused => return Err("port 53 refused (no DNS server there)".into()),
        }
    }
}

/// The zone's nameservers and their addresses, through the system's
/// resolver: the nameservers of /etc/resolv.conf for the NS records, the
/// C library for their addresses.
fn nameservers(zone: &Name, deadline: Instant) -> Result<Vec<(String, IpAddr)>, String> {
    let conf = std::fs::read("/etc/resolv.conf")
        .map_err(|e| format!("cannot read /etc/resolv.conf: {e}"))?;
    let conf = resolv_conf::Config::parse(&conf)
        .map_err(|e| format!("cannot parse /etc/resolv.conf: {e}"))?;
    let resolvers: Vec<IpAddr> = conf.nameservers.iter().map(|n| n.into()).collect();
    let mut why = String::from("/etc/resolv.conf names no nameserver");
    for resolver in resolvers {
        let reply = match ask(
            SocketAddr::new(resolver, 53),
            zone,
            RecordType::NS,
            true,
            deadline,
        ) {
            Ok(reply) => reply,
            Err(e) => {
                why = format!("resolver {resolver}: {e}");
                continue;
            }
        };
        if reply.response_code() != ResponseCode::NoError {
            return Err(format!(
                "the NS lookup answered {} (resolver {resolver})",
                reply.response_code()
            ));
        }
        let names: Vec<String> = reply
            .answers()
            .iter()
            .filter_map(|r| match r.data() {
                RData::NS(ns) => Some(ns.0.to_ascii().trim_end_matches('.').to_string()),
                _ => None,
            })
            .collect();
        if names.is_empty() {
            return Err(format!("no NS records (resolver {resolver})"));
        }
        let mut servers = Vec::new();
        for name in names {
            match (name.as_str(), 53).to_socket_addrs() {
                Ok(addrs) => {
                    let mut addrs: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
                    addrs.sort();
                    addrs.dedup();
                    servers.extend(addrs.into_iter().map(|a| (name.clone(), a)));
                }
                Err(e) => return Err(format!("nameserver {name} has no address: {e}")),
            }
        }
        return Ok(servers);
    }
    Err(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers() -> Vec<(String, IpAddr)> {
        vec![
            ("ns1".into(), "127.0.0.1".parse().expect("addr")),
            ("ns2".into(), "::1".parse().expect("addr")),
        ]
    }

    #[test]
    fn agreeing_serials_are_ok() {
        let v = judge(
            "example.org",
            &servers(),
            &[Answer::Serial(7), Answer::Serial(7)],
        );
        assert_eq!(v.state, State::Ok);
        assert!(
            v.text.starts_with(
                "DNS-ZONE OK - example.org: 2 nameserver address(es) agree on serial 7\n"
            ),
            "{}",
            v.text
        );
    }

    #[test]
    fn differing_serials_warn_and_name_servers_and_serials() {
        let v = judge(
            "example.org",
            &servers(),
            &[Answer::Serial(7), Answer::Serial(8)],
        );
        assert_eq!(v.state, State::Warning);
        assert!(
            v.text.starts_with(
                "DNS-ZONE WARNING - example.org: serials differ: ns1 (127.0.0.1) 7, ns2 (::1) 8"
            ),
            "{}",
            v.text
        );
    }

    #[test]
    fn a_silent_or_lame_server_is_critical() {
        let v = judge(
            "example.org",
            &servers(),
            &[
                Answer::Serial(7),
                Answer::Silent("no reply within 1.0 s".into()),
            ],
        );
        assert_eq!(v.state, State::Critical);
        assert!(v.text.contains("ns2 (::1) did not answer"), "{}", v.text);
        let v = judge(
            "example.org",
            &servers(),
            &[
                Answer::NotAuthoritative("answered REFUSED".into()),
                Answer::Serial(7),
            ],
        );
        assert_eq!(v.state, State::Critical);
        assert!(v.text.contains("ns1 (127.0.0.1) is not authoritative"));
    }
}
