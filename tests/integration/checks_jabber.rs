//! jabber against Debian's Prosody, started by the test in the foreground
//! in a network namespace, with its config, pid file and data in the
//! test's directory: up is OK with check_jabber's own text, stopped is
//! CRITICAL. Prosody listens on a port other than the XMPP default, so a
//! check that did not pass its `port` on would fail.

use crate::harness::{dedent, Site};
use crate::netns::{result, Netns};

/// Not 5222: check_jabber's default must not be what makes the test pass.
const PORT: u16 = 5299;

#[test]
fn jabber_is_ok_when_prosody_is_up_and_critical_when_it_is_stopped() {
    let ns = Netns::new();
    let site = Site::new(&dedent(&format!(
        r#"
            [hosts.xmpp]
            ipv4 = "127.0.0.1"
            [checks.chat]
            type = "jabber"
            hosts = ["xmpp"]
            port = {PORT}
            timeout = 5
        "#
    )));
    let dir = site.dir.path().display().to_string();
    std::fs::create_dir(site.path("data")).expect("mkdir data");
    // A client-to-server listener only; no TLS (check_jabber opens a plain
    // stream), no server-to-server, no HTTP. run_as_root: the namespace
    // needs root, and Prosody would otherwise switch to its system user,
    // which cannot read the test's directory.
    site.write(
        "prosody.cfg.lua",
        &format!(
            "run_as_root = true\npidfile = \"{dir}/prosody.pid\"\ndata_path = \"{dir}/data\"\n\
             certificates = \"{dir}\"\nlog = {{ {{ levels = {{ min = \"info\" }}, to = \"console\" }} }}\n\
             interfaces = {{ \"127.0.0.1\" }}\nc2s_ports = {{ {PORT} }}\nc2s_direct_tls_ports = {{}}\n\
             legacy_ssl_ports = {{}}\ns2s_ports = {{}}\ncomponent_ports = {{}}\nhttp_ports = {{}}\n\
             https_ports = {{}}\nmodules_enabled = {{ \"saslauth\", \"disco\", \"ping\" }}\n\
             modules_disabled = {{ \"s2s\" }}\nauthentication = \"internal_hashed\"\n\
             storage = \"internal\"\nVirtualHost \"127.0.0.1\"\n"
        ),
    );
    let conf = site.path("prosody.cfg.lua").display().to_string();
    // -F: in the foreground, so the test owns the process and stops it.
    let mut prosody = ns.serve(
        "prosody",
        &["-F", "--config", &conf],
        &site.path("prosody.log"),
    );
    ns.wait_listening("tcp", "127.0.0.1", PORT);

    let (state, output) = result(&ns.run_once(&site), "chat/xmpp/ipv4");
    assert_eq!(state, "OK", "{output}");
    assert!(
        output.starts_with("JABBER OK - ")
            && output.contains(&format!("response time on 127.0.0.1 port {PORT}")),
        "{output}"
    );
    // Prosody writes its log in its own time: the check may have its
    // answer before the line is in the file.
    let log = || std::fs::read_to_string(site.path("prosody.log")).unwrap_or_default();
    crate::harness::wait_for(
        "Prosody itself to log the check's connection",
        std::time::Duration::from_secs(20),
        || log().contains("Client connected"),
    );

    prosody.stop();
    let (state, output) = result(&ns.run_once(&site), "chat/xmpp/ipv4");
    assert_eq!(state, "CRITICAL", "{output}");
    assert!(
        output.contains(&format!("127.0.0.1 and port {PORT}: Connection refused")),
        "{output}"
    );
}
