//! openvpn against Debian's OpenVPN as a UDP server (server mode, a tun
//! device inside a network namespace), with plain TLS, tls-auth and
//! tls-crypt: up is OK, stopped is CRITICAL.

use std::process::Command;

use crate::harness::{dedent, Site};
use crate::netns::{result, Netns};

#[track_caller]
fn sh(line: &str, dir: &str) {
    let ok = Command::new("sh")
        .args(["-c", line])
        .current_dir(dir)
        .status()
        .expect("run sh")
        .success();
    assert!(ok, "{line} failed");
}

#[test]
fn openvpn_with_tls_auth_or_tls_crypt_is_ok_when_up_and_critical_when_stopped() {
    let ns = Netns::new();
    let site = Site::new("");
    let dir = site.dir.path().display().to_string();
    sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
         -keyout ca.key -out ca.crt -days 2 -subj /CN=ca 2>/dev/null && \
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
         -keyout server.key -out server.csr -subj /CN=server 2>/dev/null && \
         openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
         -out server.crt -days 2 2>/dev/null && \
         openvpn --genkey secret ta.key && openvpn --genkey secret tc.key",
        &dir,
    );
    // (check, port, server options, check options)
    let cases = [
        ("plain", 1194, vec![], String::new()),
        (
            "auth",
            1195,
            vec!["--tls-auth", "ta.key", "0"],
            dedent(&format!(
                r#"
                    tls_auth = "{dir}/ta.key"
                    key_direction = 1
                "#
            )),
        ),
        (
            "crypt",
            1196,
            vec!["--tls-crypt", "tc.key"],
            format!("tls_crypt = \"{dir}/tc.key\"\n"),
        ),
    ];
    let mut config = dedent(
        r#"
            [hosts.vpn]
            ipv4 = "127.0.0.1"
        "#,
    );
    let mut servers = Vec::new();
    for (i, (check, port, extra, options)) in cases.iter().enumerate() {
        config.push_str(&dedent(&format!(
            r#"
                [checks.{check}]
                type = "openvpn"
                hosts = ["vpn"]
                port = {port}
                timeout = 3
                {options}"#
        )));
        let port = port.to_string();
        let dev = format!("tun{i}");
        let mut args = vec![
            "--mode",
            "server",
            "--tls-server",
            "--proto",
            "udp",
            "--local",
            "127.0.0.1",
            "--lport",
            &port,
            "--dev",
            &dev,
            "--dev-type",
            "tun",
            "--topology",
            "subnet",
            "--ifconfig",
            "198.18.0.1",
            "255.255.255.0",
            "--ca",
            "ca.crt",
            "--cert",
            "server.crt",
            "--key",
            "server.key",
            "--dh",
            "none",
            "--cd",
            &dir,
            "--verb",
            "3",
        ];
        args.extend(extra.iter().copied());
        let log = site.path(&format!("{check}.log"));
        servers.push(ns.serve("openvpn", &args, &log));
        ns.wait_listening("udp", "127.0.0.1", port.parse().expect("port"));
    }
    site.write("site.toml", &config);
    let objs = ns.run_once(&site);
    for (check, wrap) in [
        ("plain", "no tls-auth/tls-crypt"),
        ("auth", "tls-auth"),
        ("crypt", "tls-crypt"),
    ] {
        let (state, output) = result(&objs, &format!("{check}/vpn/ipv4"));
        assert_eq!(state, "OK", "{check}: {output}");
        assert!(
            output.starts_with("OPENVPN OK - 127.0.0.1:")
                && output.contains(&format!("answered the hard reset ({wrap})")),
            "{check}: {output}"
        );
    }
    for server in &mut servers {
        server.stop();
    }
    let objs = ns.run_once(&site);
    for check in ["plain", "auth", "crypt"] {
        let (state, output) = result(&objs, &format!("{check}/vpn/ipv4"));
        assert_eq!(state, "CRITICAL", "{check}: {output}");
        assert!(
            output.starts_with("OPENVPN CRITICAL - 127.0.0.1:"),
            "{check}: {output}"
        );
    }
}

#[test]
fn a_missing_openvpn_key_file_is_a_config_error_naming_the_key() {
    let site = Site::new(&dedent(
        r#"
            [hosts.vpn]
            ipv4 = "127.0.0.1"
            [checks.vpn]
            type = "openvpn"
            hosts = ["vpn"]
            tls_crypt = "/nonexistent/tc.key"
        "#,
    ));
    let out = site.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("checks.vpn.tls_crypt") && err.contains("/nonexistent/tc.key"),
        "{err}"
    );
}
