//! https (the built-in `picomon plugin https`) against nginx serving a
//! certificate from a private CA (valid, wrong name, expired, expiring
//! soon) and a self-signed one: each is judged as an operator expects,
//! says why, and `verify = false` opts out; then what the page itself is
//! judged on (status, string), the system trust store, and a server that
//! refuses or never answers.

use crate::harness::{dedent, Site};
use crate::netns::{result, Netns};

/// nginx's configuration: `servers` in its http block, all under `dir`.
fn nginx_conf(dir: &str, servers: &str) -> String {
    format!(
        "daemon off;\nmaster_process off;\npid {dir}/nginx.pid;\nerror_log {dir}/nginx.err;\n\
         events {{}}\nhttp {{\naccess_log off;\nclient_body_temp_path {dir}/tmp;\n\
         proxy_temp_path {dir}/tmp;\nfastcgi_temp_path {dir}/tmp;\nuwsgi_temp_path {dir}/tmp;\n\
         scgi_temp_path {dir}/tmp;\n{servers}}}\n"
    )
}

/// Starts nginx in `ns` with `servers`, and waits for its last port.
fn start_nginx(ns: &Netns, site: &Site, servers: &str, last_port: u16) -> crate::netns::Served {
    let dir = site.dir.path().display().to_string();
    site.write("nginx.conf", &nginx_conf(&dir, servers));
    let conf = site.path("nginx.conf").display().to_string();
    let nginx = ns.serve(
        "nginx",
        &["-c", &conf, "-p", &dir, "-e", &format!("{dir}/nginx.err")],
        &site.path("nginx.log"),
    );
    ns.wait_listening("tcp", "127.0.0.1", last_port);
    nginx
}

/// Asserts each (check, state, start of the output, text in it).
#[track_caller]
fn assert_results(objs: &[serde_json::Value], cases: &[(&str, &str, &str, &str)], host: &str) {
    for (check, state, start, within) in cases {
        let (got, output) = result(objs, &format!("{check}/{host}/ipv4"));
        assert_eq!(&got, state, "{check}: {output}");
        assert!(output.starts_with(start), "{check}: {output}");
        assert!(output.contains(within), "{check}: {output}");
    }
}

/// (check, certificate, extra keys, state, start of the output, text in it)
const CASES: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "valid",
        "valid",
        "",
        "OK",
        "HTTPS OK - HTTP/1.1 200 OK, 6 bytes in ",
        "certificate valid for 299 days",
    ),
    (
        "selfsigned",
        "selfsigned",
        "",
        "CRITICAL",
        "HTTPS CRITICAL - www.example.test at 127.0.0.1:8442: TLS handshake failed: ",
        "invalid peer certificate: UnknownIssuer",
    ),
    (
        "wrongname",
        "wrongname",
        "",
        "CRITICAL",
        "HTTPS CRITICAL - www.example.test at 127.0.0.1:8443: TLS handshake failed: ",
        "certificate not valid for name \"www.example.test\"",
    ),
    (
        "expired",
        "expired",
        "",
        "CRITICAL",
        "HTTPS CRITICAL - www.example.test at 127.0.0.1:8444: TLS handshake failed: ",
        "invalid peer certificate: expired on 20",
    ),
    (
        "unverified",
        "selfsigned",
        "verify = false\n",
        "OK",
        "HTTPS OK - HTTP/1.1 200 OK",
        "certificate valid for 299 days",
    ),
    (
        "soon",
        "soon",
        "certificate_days = [30, 7]\n",
        "WARNING",
        "HTTPS WARNING - certificate valid for 9 days, fewer than 30; HTTP/1.1 200 OK",
        "",
    ),
    (
        "soon-critical",
        "soon",
        "certificate_days = [30, 11]\n",
        "CRITICAL",
        "HTTPS CRITICAL - certificate valid for 9 days, fewer than 11; HTTP/1.1 200 OK",
        "",
    ),
    (
        "expired-unverified",
        "expired",
        // One line of the fixture a line: a const takes no `dedent`.
        concat!("verify = false\n", "certificate_days = [30, 7]\n"),
        "CRITICAL",
        "HTTPS CRITICAL - certificate expired 2 days ago; HTTP/1.1 200 OK",
        "",
    ),
];

#[test]
fn https_is_critical_for_untrusted_wrong_name_or_expired_certificates() {
    let ns = Netns::new();
    let site = Site::new("");
    let dir = site.dir.path().display().to_string();
    crate::harness::make_certs(site.dir.path());
    site.write("www/index.html", "hello\n");
    let mut servers = String::new();
    let mut config = dedent(
        r#"
            [hosts.www]
            ipv4 = "127.0.0.1"
        "#,
    );
    for (i, (check, cert, extra, _, _, _)) in CASES.iter().enumerate() {
        let port = 8441 + i;
        servers.push_str(&format!(
            "server {{ listen 127.0.0.1:{port} ssl; server_name www.example.test; \
             ssl_certificate {dir}/{cert}.pem; ssl_certificate_key {dir}/{cert}.key; root {dir}/www; }}\n"
        ));
        config.push_str(&format!(
            r#"
[checks.{check}]
type = "https"
hosts = ["www"]
port = {port}
vhost = "www.example.test"
ca_file = "{dir}/ca.pem"
timeout = 5
{extra}"#
        ));
    }
    let _nginx = start_nginx(&ns, &site, &servers, 8441 + CASES.len() as u16 - 1);
    site.write("site.toml", &config);
    let objs = ns.run_once(&site);
    let cases: Vec<_> = CASES
        .iter()
        .map(|(check, _, _, state, start, within)| (*check, *state, *start, *within))
        .collect();
    assert_results(&objs, &cases, "www");
}

#[test]
fn https_judges_the_pages_status_and_string_and_trusts_the_system_store() {
    let ns = Netns::new();
    let site = Site::new("");
    let dir = site.dir.path().display().to_string();
    crate::harness::make_certs(site.dir.path());
    site.write("www/index.html", "hello, Welcome\n");
    // 8451: by name, from the private CA; 8452: by address (loopback.pem
    // names 127.0.0.1); nothing listens on 8453; 127.0.0.9 never answers.
    let servers = format!(
        "server {{ listen 127.0.0.1:8451 ssl; server_name www.example.test; \
         ssl_certificate {dir}/valid.pem; ssl_certificate_key {dir}/valid.key; root {dir}/www; \
         location = /broken {{ return 503; }} location = /old {{ return 301 /; }} }}\n\
         server {{ listen 127.0.0.1:8452 ssl; \
         ssl_certificate {dir}/loopback.pem; ssl_certificate_key {dir}/loopback.key; root {dir}/www; }}\n"
    );
    let _nginx = start_nginx(&ns, &site, &servers, 8452);
    ns.drop_traffic_to("127.0.0.9");
    let page_on = |port: u16, check: &str, keys: &str| {
        format!(
            r#"
[checks.{check}]
type = "https"
hosts = ["www"]
port = {port}
vhost = "www.example.test"
ca_file = "{dir}/ca.pem"
timeout = 5
{keys}
"#
        )
    };
    let page = |check: &str, keys: &str| page_on(8451, check, keys);
    let by_address = r#"
[checks.by-address]
type = "https"
hosts = ["www"]
port = 8452
timeout = 5
"#;
    let hosts = r#"
[hosts.www]
ipv4 = "127.0.0.1"

[hosts.silent]
ipv4 = "127.0.0.9"
"#;
    let config = [
        hosts.to_string(),
        page("string", "string = \"Welcome\""),
        page("missing-string", "string = \"Goodbye\""),
        page("not-found", "url = \"/nothing\""),
        page(
            "expected-404",
            &dedent(
                r#"
                    url = "/nothing"
                    status = 404"#,
            ),
        ),
        page("wrong-status", "status = 302"),
        page("server-error", "url = \"/broken\""),
        page("redirect", "url = \"/old\""),
        page_on(8453, "refused", ""),
        by_address.to_string(),
        format!(
            r#"
[checks.silent]
type = "https"
hosts = ["silent"]
vhost = "www.example.test"
ca_file = "{dir}/ca.pem"
timeout = 5
"#
        ),
    ];
    site.write("site.toml", &config.concat());
    let objs = ns.run_once_with_env(&site, &[("SSL_CERT_FILE", &format!("{dir}/ca.pem"))]);
    assert_results(
        &objs,
        &[
            ("string", "OK", "HTTPS OK - HTTP/1.1 200 OK, 15 bytes", ""),
            (
                "missing-string",
                "CRITICAL",
                "HTTPS CRITICAL - \"Goodbye\" not found; HTTP/1.1 200 OK",
                "",
            ),
            (
                "not-found",
                "WARNING",
                "HTTPS WARNING - HTTP/1.1 404 Not Found",
                "",
            ),
            (
                "expected-404",
                "OK",
                "HTTPS OK - HTTP/1.1 404 Not Found",
                "",
            ),
            (
                "wrong-status",
                "CRITICAL",
                "HTTPS CRITICAL - expected status 302; HTTP/1.1 200 OK",
                "",
            ),
            (
                "server-error",
                "CRITICAL",
                "HTTPS CRITICAL - HTTP/1.1 503",
                "",
            ),
            (
                "redirect",
                "OK",
                "HTTPS OK - HTTP/1.1 301 Moved Permanently",
                "",
            ),
            (
                "refused",
                "CRITICAL",
                "HTTPS CRITICAL - www.example.test at 127.0.0.1:8453: cannot connect: ",
                "refused",
            ),
            // No vhost: the address is the name, and the CA comes from
            // SSL_CERT_FILE, as picomon's own environment has it.
            ("by-address", "OK", "HTTPS OK - HTTP/1.1 200 OK", ""),
        ],
        "www",
    );
    assert_results(
        &objs,
        &[(
            "silent",
            "CRITICAL",
            // The plugin's own deadline, half a second before the kill.
            "HTTPS CRITICAL - www.example.test at 127.0.0.9:443: cannot connect: no answer within 4.5 s",
            "",
        )],
        "silent",
    );

    // Without SSL_CERT_FILE the system's own store does not know the
    // private CA.
    site.write("site.toml", &format!("{hosts}{by_address}"));
    let objs = ns.run_once(&site);
    let (state, output) = result(&objs, "by-address/www/ipv4");
    assert_eq!(state, "CRITICAL", "{output}");
    assert!(
        output.starts_with("HTTPS CRITICAL - 127.0.0.1:8452: TLS handshake failed: invalid peer certificate: UnknownIssuer"),
        "{output}"
    );
}

#[test]
fn a_missing_ca_file_is_a_config_error_naming_the_key() {
    let site = Site::new(&dedent(
        r#"
            [hosts.www]
            ipv4 = "127.0.0.1"
            [checks.web]
            type = "https"
            hosts = ["www"]
            ca_file = "/nonexistent/ca.pem"
        "#,
    ));
    let out = site.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("checks.web.ca_file") && err.contains("/nonexistent/ca.pem"),
        "{err}"
    );
}
