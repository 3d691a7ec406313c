//! https against nginx serving a certificate from a private CA (valid,
//! wrong name, expired, expiring soon) and a self-signed one: each is
//! judged as an operator expects, and `verify = false` opts out.

use crate::harness::Site;
use crate::netns::{result, Netns};

/// (check, certificate, extra keys, state, start of the output)
const CASES: &[(&str, &str, &str, &str, &str)] = &[
    ("valid", "valid", "", "OK", "HTTP OK: HTTP/1.1 200 OK"),
    ("selfsigned", "selfsigned", "", "CRITICAL", "HTTP CRITICAL"),
    ("wrongname", "wrongname", "", "CRITICAL", "HTTP CRITICAL"),
    ("expired", "expired", "", "CRITICAL", "HTTP CRITICAL"),
    (
        "unverified",
        "selfsigned",
        "verify = false\n",
        "OK",
        "HTTP OK",
    ),
    (
        "soon",
        "soon",
        "certificate_days = [30, 7]\n",
        "WARNING",
        "WARNING - Certificate 'www.example.test' expires in",
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
    let mut config = String::from("[hosts.www]\nipv4 = \"127.0.0.1\"\n");
    for (i, (check, cert, extra, _, _)) in CASES.iter().enumerate() {
        let port = 8441 + i;
        servers.push_str(&format!(
            "server {{ listen 127.0.0.1:{port} ssl; server_name www.example.test; \
             ssl_certificate {dir}/{cert}.pem; ssl_certificate_key {dir}/{cert}.key; root {dir}/www; }}\n"
        ));
        config.push_str(&format!(
            "[checks.{check}]\ntype = \"https\"\nhosts = [\"www\"]\nport = {port}\n\
             vhost = \"www.example.test\"\nca_file = \"{dir}/ca.pem\"\ntimeout = 5\n{extra}"
        ));
    }
    site.write(
        "nginx.conf",
        &format!(
            "daemon off;\nmaster_process off;\npid {dir}/nginx.pid;\nerror_log {dir}/nginx.err;\n\
             events {{}}\nhttp {{\naccess_log off;\nclient_body_temp_path {dir}/tmp;\n\
             proxy_temp_path {dir}/tmp;\nfastcgi_temp_path {dir}/tmp;\nuwsgi_temp_path {dir}/tmp;\n\
             scgi_temp_path {dir}/tmp;\n{servers}}}\n"
        ),
    );
    let conf = site.path("nginx.conf").display().to_string();
    let _nginx = ns.serve(
        "nginx",
        &["-c", &conf, "-p", &dir, "-e", &format!("{dir}/nginx.err")],
        &site.path("nginx.log"),
    );
    ns.wait_listening("tcp", "127.0.0.1", 8441 + CASES.len() as u16 - 1);
    site.write("site.toml", &config);
    let objs = ns.run_once(&site);
    for (check, _, _, state, start) in CASES {
        let (got, output) = result(&objs, &format!("{check}/www/ipv4"));
        assert_eq!(&got, state, "{check}: {output}");
        assert!(output.starts_with(start), "{check}: {output}");
    }
}

#[test]
fn a_missing_ca_file_is_a_config_error_naming_the_key() {
    let site = Site::new(
        "[hosts.www]\nipv4 = \"127.0.0.1\"\n\
         [checks.web]\ntype = \"https\"\nhosts = [\"www\"]\nca_file = \"/nonexistent/ca.pem\"\n",
    );
    let out = site.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("checks.web.ca_file") && err.contains("/nonexistent/ca.pem"),
        "{err}"
    );
}
