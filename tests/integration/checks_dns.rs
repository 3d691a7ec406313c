//! dns-zone and dns-rec against real NSD servers in a network namespace:
//! serials that agree, differ, a server stopped; an answer, NXDOMAIN, no
//! server, a silent server; a `~/.digrc` with `+short` within dig's reach.

use std::time::Duration;

use crate::harness::{dedent, Site};
use crate::netns::{result, Netns, Served};

const ZONE: &str = "example.test";

/// Writes a zone file with `serial` and an NSD config serving it on
/// `addrs`, and starts NSD.
fn nsd(ns: &Netns, site: &Site, name: &str, addrs: &[&str], serial: u32) -> Served {
    let dir = site.dir.path().display().to_string();
    site.write(
        &format!("{name}.zone"),
        &format!(
            "$ORIGIN {ZONE}.\n$TTL 60\n@ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. ( {serial} 3600 600 86400 60 )\n@ IN NS ns1.{ZONE}.\nns1 IN A 127.0.0.1\nwww IN A 192.0.2.80\n"
        ),
    );
    let listen: String = addrs
        .iter()
        .map(|a| format!("  ip-address: {a}\n"))
        .collect();
    site.write(
        &format!("{name}.conf"),
        &format!(
            "server:\n{listen}  port: 53\n  username: \"\"\n  chroot: \"\"\n  database: \"\"\n  zonesdir: \"{dir}\"\n  pidfile: \"{dir}/{name}.pid\"\n  xfrdfile: \"{dir}/{name}.xfrd\"\n  zonelistfile: \"{dir}/{name}.list\"\n  server-count: 1\nremote-control:\n  control-enable: no\nzone:\n  name: {ZONE}\n  zonefile: \"{dir}/{name}.zone\"\n"
        ),
    );
    let conf = site.path(&format!("{name}.conf")).display().to_string();
    let served = ns.serve(
        "nsd",
        &["-d", "-c", &conf],
        &site.path(&format!("{name}.log")),
    );
    for addr in addrs {
        ns.wait_listening("udp", addr, 53);
    }
    served
}

#[test]
fn dns_zone_is_ok_when_serials_agree_warns_when_they_differ_and_is_critical_when_a_server_stops() {
    let ns = Netns::new();
    let site = Site::new(&dedent(
        r#"
            [hosts.ns1]
            ipv4 = "127.0.0.1"
            ipv6 = "::1"
            [hosts.ns2]
            ipv4 = "127.0.0.2"
            [checks.zone]
            type = "dns-zone"
            zones = ["example.test"]
            hosts = ["ns1", "ns2"]
            timeout = 3
        "#,
    ));
    let _ns1 = nsd(&ns, &site, "ns1", &["127.0.0.1", "::1"], 2024010101);
    let mut ns2 = nsd(&ns, &site, "ns2", &["127.0.0.2"], 2024010101);
    let (state, output) = result(&ns.run_once(&site), "zone/example.test");
    assert_eq!(state, "OK", "{output}");
    assert!(
        output.starts_with(
            "DNS-ZONE OK - example.test: 3 nameserver address(es) agree on serial 2024010101"
        ),
        "{output}"
    );

    ns2.stop();
    let mut ns2 = nsd(&ns, &site, "ns2", &["127.0.0.2"], 2024010102);
    let (state, output) = result(&ns.run_once(&site), "zone/example.test");
    assert_eq!(state, "WARNING", "{output}");
    assert!(
        output.starts_with(
            "DNS-ZONE WARNING - example.test: serials differ: ns1 (127.0.0.1) 2024010101, ns1 (::1) 2024010101, ns2 (127.0.0.2) 2024010102"
        ),
        "{output}"
    );

    ns2.stop();
    let (state, output) = result(&ns.run_once(&site), "zone/example.test");
    assert_eq!(state, "CRITICAL", "{output}");
    assert!(
        output.starts_with("DNS-ZONE CRITICAL - example.test: ns2 (127.0.0.2) did not answer"),
        "{output}"
    );
}

#[test]
fn dns_rec_needs_noerror_and_a_dead_or_silent_server_is_critical_within_the_timeout() {
    let ns = Netns::new();
    let site = Site::new(&dedent(
        r#"
            [hosts.up]
            ipv4 = "127.0.0.1"
            [hosts.none]
            ipv4 = "127.0.0.3"
            [hosts.silent]
            ipv4 = "127.0.0.66"
            [checks.www]
            type = "dns-rec"
            hosts = ["up"]
            query = "www.example.test"
            [checks.nx]
            type = "dns-rec"
            hosts = ["up"]
            query = "nope.example.test"
            pattern = "nope"
            [checks.dead]
            type = "dns-rec"
            hosts = ["none"]
            query = "www.example.test"
            timeout = 3
            [checks.quiet]
            type = "dns-rec"
            hosts = ["silent"]
            query = "www.example.test"
            timeout = 3
        "#,
    ));
    ns.drop_traffic_to("127.0.0.66");
    let _server = nsd(&ns, &site, "ns1", &["127.0.0.1"], 1);
    let objs = ns.run_once(&site);

    let (state, output) = result(&objs, "www/up/ipv4");
    assert_eq!(state, "OK", "{output}");
    assert!(
        output.starts_with("DNS OK - 127.0.0.1 answered www.example.test: NOERROR, 1 answer(s)"),
        "{output}"
    );
    // The pattern matches the question line, but NXDOMAIN is no answer.
    let (state, output) = result(&objs, "nx/up/ipv4");
    assert_eq!(state, "CRITICAL", "{output}");
    assert!(
        output.starts_with("DNS CRITICAL - 127.0.0.1 answered nope.example.test: NXDOMAIN"),
        "{output}"
    );
    for id in ["dead/none/ipv4", "quiet/silent/ipv4"] {
        let (state, output) = result(&objs, id);
        assert_eq!(state, "CRITICAL", "{id}: {output}");
        assert!(
            output.starts_with("DNS CRITICAL - no answer from 127.0.0."),
            "{id}: dig itself must report, within the timeout: {output}"
        );
    }
    let quiet = objs
        .iter()
        .find(|o| o["instance"] == "quiet/silent/ipv4")
        .and_then(|o| o["duration"].as_f64())
        .expect("duration");
    assert!(
        Duration::from_secs_f64(quiet) < Duration::from_secs(3),
        "took {quiet} s"
    );
}

#[test]
fn a_digrc_with_short_in_home_does_not_break_dns_rec() {
    let ns = Netns::new();
    let site = Site::new("");
    let home = site.path("home").display().to_string();
    site.write("home/.digrc", "+short\n");
    // Plugins get a clean environment, so HOME reaches dig only through
    // the check's `env`; picomon's own HOME is set too, as a user's is.
    site.write(
        "site.toml",
        &dedent(&format!(
            r#"
                [hosts.up]
                ipv4 = "127.0.0.1"
                [checks.www]
                type = "dns-rec"
                hosts = ["up"]
                query = "www.example.test"
                timeout = 5
                env = {{ HOME = "{home}" }}
            "#
        )),
    );
    let _server = nsd(&ns, &site, "ns1", &["127.0.0.1"], 1);

    // Without -r, that .digrc leaves dig nothing but the address: proof
    // that the .digrc is read, so the check below is a real test.
    let plain = ns
        .command("dig")
        .env("HOME", &home)
        .args(["www.example.test", "@127.0.0.1"])
        .output()
        .expect("run dig");
    assert_eq!(String::from_utf8_lossy(&plain.stdout).trim(), "192.0.2.80");

    let objs = ns.run_once_with_env(&site, &[("HOME", &home)]);
    let (state, output) = result(&objs, "www/up/ipv4");
    assert_eq!(state, "OK", "{output}");
    assert!(
        output.starts_with("DNS OK - 127.0.0.1 answered www.example.test: NOERROR, 1 answer(s)"),
        "{output}"
    );
}
