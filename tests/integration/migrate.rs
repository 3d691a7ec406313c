//! `picomon migrate CONFIG.py` with the real python3, on configurations
//! written the way picomon.py's users write them; then check-config and
//! `-1` on what it printed; and configs that misbehave.

use std::process::{Output, Stdio};

use crate::harness::{closed_port, HttpServer, Site, PLUGINS};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `picomon migrate NAME` in the site's directory.
fn migrate(site: &Site, name: &str) -> Output {
    site.picomon()
        .arg("migrate")
        .arg(site.path(name))
        .stdin(Stdio::null())
        .output()
        .expect("run picomon migrate")
}

/// Migrates `config.py` into `site.toml`, asserting that it worked.
#[track_caller]
fn migrated(site: &Site) -> (String, String) {
    let out = migrate(site, "config.py");
    assert!(out.status.success(), "migrate failed: {}", stderr(&out));
    site.write("site.toml", &stdout(&out));
    (stdout(&out), stderr(&out))
}

/// A picomon.py site: dual-stack hosts, every check class, the sample's
/// `day` arithmetic, custom subclasses, hosts from a helper module.
const SITE_PY: &str = r#"from picomon.checks import *
from picomon import config
from site_hosts import web, mail

config.base_tick = 30
config.emails.to.append('ops@example.org')
config.emails.to.append('noc@example.org')
config.emails.addr_from = 'Monitoring <mon@example.org>'
config.emails.smtp_host = 'smtp.example.org:587'
config.emails.report.every = 3600
config.emails.watchdog_subject = '[example] picomon stopped'
config.emails.subject_tpl = '[example] {state}: {check} on {dest}'
config.default_error_every = 2

ns1 = Host(ipv4='192.0.2.53', ipv6='2001:db8::53', name='ns1')
ns2 = Host(ipv4='192.0.2.54', ipv6='2001:db8::54')
v6only = Host(ipv6='2001:db8::beef', name='v6 box')

day = 86400 / config.base_tick

class CheckSSH4(Check4):
    def check(self):
        return self.exec_with_timeout(['/usr/lib/nagios/plugins/check_ssh', '-H', self.addr, '-t', str(self.timeout)])

class CheckSSH6(Check6):
    def check(self):
        if not self.exec_with_timeout(['/usr/lib/nagios/plugins/check_ssh', '-H', self.addr]):
            return False
        return True

class CheckBackup(Check):
    def __init__(self, path, **options):
        super().__init__(**options)
        self.path = path
        self.target_name = 'backup of ' + path
    def check(self):
        return self.exec_with_timeout(['/usr/local/bin/check_backup', self.path], pattern='fresh')

class CheckWeird(Check4):
    def check(self):
        return self.exec_with_timeout(['a', self.addr]) and self.exec_with_timeout(['b'])

config.checks.add([CheckPing4, CheckPing6], [web, mail, ns1, ns2], retry=3, every=2)
config.checks.add(CheckPing6, v6only)
config.checks.add([CheckHTTP4, CheckHTTP6], web, status=302, vhost='www.example.org', every=day)
config.checks.add([CheckHTTPS4, CheckHTTPS6], web, string='hello', vhost='www.example.org', url='/x', timeout=10)
config.checks.add([CheckSMTP4, CheckSMTP6], mail, from_addr='picomon@example.org',
                  command='RCPT TO: postmaster@example.org', response='250', timeout=15)
config.checks.add([CheckDNSRec4, CheckDNSRec6], [ns1, ns2])
config.checks.add(CheckDNSZone, ['example.org', 'example.net'], ip_version=4)
config.checks.add([CheckOpenVPN4, CheckOpenVPN6], mail)
config.checks.add([CheckJabber4, CheckJabber6], mail, port=5222)
config.checks.add([CheckSSH4, CheckSSH6], [web, mail])
config.checks.add(CheckBackup, ['/srv', '/home'], every=60, retry=0)
config.checks.add(CheckWeird, web)
config.checks.append(CheckDNSAut())
print("loaded my config")
"#;

const SITE_HOSTS_PY: &str = r#"from picomon.checks import Host
web = Host(ipv4='192.0.2.10', ipv6='2001:db8::10', name='front web')
mail = Host(ipv4='192.0.2.25', ipv6='2001:db8::25', name='mail')
"#;

#[test]
fn a_site_with_every_check_class_migrates_to_a_config_check_config_accepts() {
    let site = Site::new("");
    site.write("config.py", SITE_PY);
    site.write("site_hosts.py", SITE_HOSTS_PY);
    let (toml, warnings) = migrated(&site);
    // Both families of a class on the same hosts: one check, same instances.
    assert!(
        toml.contains(
            "[checks.ping]\ntype = \"ping\"\nhosts = [\"web\", \"mail\", \"ns1\", \"ns2\"]\nip = [4, 6]\nevery = 2\nretry = 2\n"
        ),
        "{toml}"
    );
    assert!(toml.contains("hosts = [\"v6only\"]\nip = [6]\n"), "{toml}");
    assert!(
        toml.contains("[hosts.v6only]\nipv6 = \"2001:db8::beef\"\nname = \"v6 box\"\n"),
        "{toml}"
    );
    assert!(toml.contains("[hosts.ns2]\nipv4 = \"192.0.2.54\"\nipv6 = \"2001:db8::54\"\nname = \"192.0.2.54/2001:db8::54\"\n"), "{toml}");
    assert!(toml.contains("default_retry = 0\n"), "{toml}");
    assert!(
        toml.contains("base_tick = 30\n") && toml.contains("default_error_every = 2\n"),
        "{toml}"
    );
    // 86400 / base_tick is a float in Python: a whole number of ticks here.
    assert!(
        toml.contains("every = 2880\nstatus = 302\nvhost = \"www.example.org\"\n"),
        "{toml}"
    );
    assert!(toml.contains("verify = false\n"), "{toml}");
    assert!(toml.contains("from_addr = \"picomon@example.org\"\ncommand = \"RCPT TO: postmaster@example.org\"\nresponse = \"250\"\n"), "{toml}");
    assert!(
        toml.contains("zones = [\"example.org\", \"example.net\"]\nip_version = 4\n"),
        "{toml}"
    );
    assert!(toml.contains("query = \"www.google.com\"\n"), "{toml}");
    assert!(
        toml.contains("[checks.openvpn]\ntype = \"openvpn\"\nhosts = [\"mail\"]\nip = [4, 6]\n"),
        "{toml}"
    );
    assert!(toml.contains("[checks.CheckSSH4]\ntype = \"command\"\nhosts = [\"web\", \"mail\"]\nip = [4]\ncommand = [\"/usr/lib/nagios/plugins/check_ssh\", \"-H\", \"{addr}\", \"-t\", \"2\"]\n"), "{toml}");
    assert!(
        toml.contains(
            "[checks.CheckSSH6]\ntype = \"command\"\nhosts = [\"web\", \"mail\"]\nip = [6]\n"
        ),
        "{toml}"
    );
    assert!(toml.contains("[checks.backup-of-srv]\ntype = \"command\"\nevery = 60\ncommand = [\"/usr/local/bin/check_backup\", \"/srv\"]\npattern = \"fresh\"\n"), "{toml}");
    assert!(toml.contains("[emails]\nto = [\"ops@example.org\", \"noc@example.org\"]\nfrom = \"Monitoring <mon@example.org>\"\nsmtp_host = \"smtp.example.org:587\"\nsubject_tpl = \"[example] {state}: {check} on {dest}\"\nwatchdog_subject = \"[example] picomon stopped\"\n"), "{toml}");
    assert!(toml.contains("[emails.report]\nevery = 3600\n"), "{toml}");
    // What cannot be carried over: a comment naming the line, a warning.
    assert!(
        toml.contains("# config.py line 55: config.checks.add(CheckWeird, web)\n"),
        "{toml}"
    );
    assert!(
        toml.contains("# config.py line 56: config.checks.append(CheckDNSAut())\n"),
        "{toml}"
    );
    assert!(warnings.contains("picomon: warning: config.py:55: not translated: CheckWeird: its check() runs 2 commands"), "{warnings}");
    assert!(
        warnings.contains("config.py:52: port = 5222: picomon.py's jabber checks ignored it"),
        "{warnings}"
    );
    assert!(!toml.contains("loaded my config") && !warnings.contains("loaded my config"));

    let check = site.run(&["check-config", "--no-secrets"]);
    assert!(
        check.status.success(),
        "check-config refused it: {}\n{toml}",
        stderr(&check)
    );
    // picomon.py's 33 instances but the 2 kept as comments: ping 8 + 1,
    // http 2, https 2, smtp 2, dns-rec 4, dns-zone 2, openvpn 2, jabber 2,
    // ssh 4, backup 2.
    assert!(
        stdout(&check).starts_with("OK: 13 checks (31 instances) on 5 hosts"),
        "{}",
        stdout(&check)
    );
}

#[test]
fn a_migrated_config_runs_its_checks_with_dash_one() {
    let http = HttpServer::start();
    let closed = closed_port();
    let site = Site::new("");
    site.write(
        "config.py",
        &format!(
            r#"from picomon.checks import *
from picomon import config

local = Host(ipv4='127.0.0.1', ipv6='::1', name='loopback')

class CheckWeb(Check4):
    def check(self):
        return self.exec_with_timeout(['{PLUGINS}/check_http', '-I', self.addr, '-p', '{port}', '-u', '/index.html', '-s', 'test page'])

class CheckClosed(Check4):
    def check(self):
        return self.exec_with_timeout(['{PLUGINS}/check_tcp', '-H', self.addr, '-p', '{closed}'])

config.checks.add([CheckWeb, CheckClosed], local, retry=2)
config.checks.add([CheckPing4, CheckPing6], local)
"#,
            port = http.port
        ),
    );
    let (toml, _) = migrated(&site);
    assert!(toml.contains("retry = 1\n"), "{toml}");
    let one = site.run(&["-1"]);
    let text = stdout(&one);
    assert_eq!(one.status.code(), Some(1), "{text}\n{}", stderr(&one));
    let web = text
        .lines()
        .find(|l| l.contains("CheckWeb"))
        .unwrap_or_default();
    let closed = text
        .lines()
        .find(|l| l.contains("CheckClosed"))
        .unwrap_or_default();
    assert!(web.contains("OK"), "{text}");
    assert!(closed.contains("CRITICAL"), "{text}");
    // Both families of the native class: two instances of one ping check.
    let pings: Vec<&str> = text.lines().filter(|l| l.contains("ping/")).collect();
    assert_eq!(pings.len(), 2, "{text}");
    assert!(pings.iter().all(|l| l.contains("OK")), "{text}");
}

#[test]
fn a_config_that_raises_fails_with_its_traceback() {
    let site = Site::new("");
    site.write(
        "config.py",
        "from picomon import config\nconfig.base_tick = 1 / 0\n",
    );
    let out = migrate(&site, "config.py");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("config.py: python3 failed to evaluate it"),
        "{err}"
    );
    assert!(err.contains("ZeroDivisionError"), "{err}");
    assert!(out.stdout.is_empty());
    // A key picomon.py does not have is an error there too.
    site.write(
        "typo.py",
        "from picomon import config\nconfig.emails.report_every = 60\n",
    );
    let out = migrate(&site, "typo.py");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("report_every"), "{}", stderr(&out));
}

#[test]
fn a_config_that_loops_forever_is_stopped() {
    let site = Site::new("");
    site.write("config.py", "while True:\n    pass\n");
    let out = migrate(&site, "config.py");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("did not finish evaluating it within 10 s"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_config_printing_without_end_is_stopped_and_its_junk_kept_out() {
    let site = Site::new("");
    site.write(
        "config.py",
        "import sys\nwhile True:\n    print('x' * 4096)\n    sys.stderr.write('y' * 4096)\n",
    );
    let out = migrate(&site, "config.py");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.len() < 16 * 1024,
        "{} bytes of stderr",
        out.stderr.len()
    );
}

#[test]
fn a_config_printing_much_then_ending_still_migrates() {
    let site = Site::new("");
    site.write(
        "config.py",
        "from picomon.checks import *\nfrom picomon import config\nfor i in range(20000):\n    print('junk ' * 100)\n\
         h = Host(ipv4='192.0.2.1', ipv6='2001:db8::1', name='h')\nconfig.checks.add(CheckPing4, [h])\n",
    );
    let (toml, warnings) = migrated(&site);
    assert!(!toml.contains("junk") && !warnings.contains("junk"));
    assert!(toml.contains("[checks.ping]"), "{toml}");
    let check = site.run(&["check-config", "--no-secrets"]);
    assert!(check.status.success(), "{}", stderr(&check));
}

#[test]
fn without_python3_migrate_says_so() {
    let site = Site::new("");
    site.write("config.py", "from picomon import config\n");
    let empty = site.path("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let out = site
        .picomon()
        .arg("migrate")
        .arg(site.path("config.py"))
        .env("PATH", &empty)
        .output()
        .expect("run picomon migrate");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("python3 not found on PATH"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_config_given_a_python_file_says_to_run_migrate() {
    let site = Site::new("");
    site.write("config.py", "from picomon import config\n");
    let out = site
        .picomon()
        .args(["check-config", "-c"])
        .arg(site.path("config.py"))
        .output()
        .expect("run picomon check-config");
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr(&out).contains("run `picomon migrate"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn migrate_of_an_empty_config_prints_a_config_check_config_accepts() {
    let site = Site::new("");
    site.write(
        "config.py",
        "from picomon.checks import *\nfrom picomon import config\n",
    );
    let (toml, warnings) = migrated(&site);
    assert!(warnings.is_empty(), "{warnings}");
    // picomon.py's own default subjects, which its users' mail had.
    assert!(
        toml.contains("[emails]\nsubject_tpl = \"[DOMAIN] {state}: {check} on {dest}\"\n"),
        "{toml}"
    );
    let check = site.run(&["check-config", "--no-secrets"]);
    assert!(check.status.success(), "{}", stderr(&check));
}

#[test]
fn a_check_that_spawns_by_itself_is_not_run_and_is_kept_as_a_comment() {
    let site = Site::new("");
    let touched = site.path("touched");
    site.write(
        "config.py",
        &format!(
            r#"from picomon.checks import *
from picomon import config
h = Host(ipv4='192.0.2.1', ipv6='2001:db8::1', name='h')
class CheckRaw(Check4):
    def check(self):
        p = Popen(['touch', '{}'], stdout=PIPE, stderr=PIPE)
        out, err = p.communicate(timeout=self.timeout)
        return re.search('ok', str(out)) is not None
config.checks.add(CheckRaw, h)
"#,
            touched.display()
        ),
    );
    let (toml, warnings) = migrated(&site);
    assert!(!touched.exists(), "the check's command ran");
    assert!(
        toml.contains("# config.py line 9: config.checks.add(CheckRaw, h)\n"),
        "{toml}"
    );
    assert!(
        warnings.contains("config.py:9: not translated: CheckRaw: its check() raised RuntimeError"),
        "{warnings}"
    );
}
