//! The translation itself, a pure function: what picomon.py built from its
//! config file (the stand-in's description) in, picomon's TOML and the
//! warnings out. Each picomon.py instance (a class on a host) becomes an
//! instance of the same picomon check, so a check's `hosts` × `ip` is
//! exactly the set of instances picomon.py ran; what cannot be carried
//! over is kept as a comment naming its line, and warned about.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::Value;

use super::description::{Description, Instance};

/// picomon's TOML for a picomon.py config, and what did not carry over.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Translation {
    pub toml: String,
    /// `FILE:LINE: what`, one line each.
    pub warnings: Vec<String>,
}

/// picomon.py's `Check` default, which its config could not change.
const PY_TIMEOUT: f64 = 2.0;
/// picomon's defaults, so that the output says only what differs.
const PICOMON_SUBJECT: &str = "[picomon] {state}: {check} on {dest}";
const PICOMON_WATCHDOG: &str = "[picomon] picomon stopped";
const PICOMON_REPORT: &str = "[picomon] error report";
/// The options every picomon.py check reads; the others are per class.
const COMMON: [&str; 5] = ["every", "retry", "error_every", "timeout", "target_name"];

/// picomon.py mails at the `retry`-th failed run in a row (`retry_count >=
/// retry`), picomon at the `retry + 1`-th: one less gives the same run,
/// hence the same time to the first mail. 0 and 1 both mail at the first.
pub(crate) fn retry(py: i64) -> i64 {
    (py - 1).max(0)
}

pub(crate) fn translate(d: &Description, source: &str) -> Translation {
    let mut t = Translator {
        d,
        source: source.lines().collect(),
        warnings: Vec::new(),
        untranslated: Vec::new(),
    };
    let toml = t.run();
    Translation {
        toml,
        warnings: t.warnings,
    }
}

struct Translator<'a> {
    d: &'a Description,
    source: Vec<&'a str>,
    warnings: Vec<String>,
    /// (line, why): kept as comments at the end.
    untranslated: Vec<(u32, String)>,
}

struct OnHost {
    host: usize,
    families: BTreeSet<u8>,
    classes: Vec<String>,
    lines: Vec<u32>,
}

fn push_new<T: PartialEq>(v: &mut Vec<T>, item: T) {
    if !v.contains(&item) {
        v.push(item);
    }
}

/// An instance's type, its keys as TOML text, and notes for its table.
type Made = (String, Vec<(String, String)>, Vec<String>);

/// One picomon check being made of picomon.py instances.
struct Table {
    name_hint: String,
    kind: String,
    /// Keys after `type`, `hosts` and `ip`, as TOML text.
    fields: Vec<(String, String)>,
    classes: Vec<String>,
    lines: Vec<u32>,
    /// For a check on hosts: each host, its families, and the classes and
    /// lines that put them there (for the comment above the table).
    hosts: Vec<OnHost>,
    zones: Vec<String>,
    notes: Vec<String>,
}

impl<'a> Translator<'a> {
    fn setting(&self, key: &str) -> Option<&'a Value> {
        self.d
            .settings
            .iter()
            .find(|s| s.key == key)
            .map(|s| &s.value)
    }

    fn line_of(&self, key: &str) -> u32 {
        self.d
            .settings
            .iter()
            .find(|s| s.key == key)
            .map_or(0, |s| s.line)
    }

    fn warn(&mut self, line: u32, what: String) {
        let warning = match line {
            0 => format!("{}: {what}", self.d.file),
            n => format!("{}:{n}: {what}", self.d.file),
        };
        push_new(&mut self.warnings, warning);
    }

    /// Not translated: a warning, and a comment in the output.
    fn keep(&mut self, line: u32, what: String) {
        self.warn(line, format!("not translated: {what}"));
        self.untranslated.push((line, what));
    }

    fn run(&mut self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# picomon configuration made by `picomon migrate` from {}.\n\
             # Check it with `picomon check-config -c FILE`, then try it with `picomon -1 -c FILE`.\n",
            self.d.file
        );
        for w in self.d.warnings.clone() {
            self.warn(w.line, w.message);
        }
        let default_every = self.globals(&mut out);
        self.emails(&mut out);
        let tables = self.checks(default_every);
        let keys = self.hosts(&mut out, &tables);
        self.tables(&mut out, tables, &keys);
        if !self.untranslated.is_empty() {
            out.push_str("\n# Not translated (picomon migrate warned about each):\n");
            for (line, what) in &self.untranslated {
                let text = match *line {
                    0 => String::new(),
                    n => self
                        .source
                        .get(n as usize - 1)
                        .map(|l| format!(": {}", l.trim()))
                        .unwrap_or_default(),
                };
                let at = match *line {
                    0 => self.d.file.clone(),
                    n => format!("{} line {n}", self.d.file),
                };
                let _ = writeln!(out, "# {at}{}", one_line(&text));
                let _ = writeln!(out, "#   {}", one_line(what));
            }
        }
        out
    }

    /// The top-level keys; returns the final `default_every`.
    fn globals(&mut self, out: &mut String) -> i64 {
        if let Some(v) = self.setting("base_tick") {
            match positive(v) {
                Some(tick) if tick != 60.0 => {
                    let _ = writeln!(out, "base_tick = {}", number(tick));
                }
                Some(_) => {}
                None => self.keep(
                    self.line_of("base_tick"),
                    format!("base_tick = {v}: not a positive number"),
                ),
            }
        }
        let mut default_every = 1;
        if let Some(v) = self.setting("default_every") {
            match self.ticks("default_every", v, self.line_of("default_every")) {
                Some(n) => default_every = n,
                None => self.keep(
                    self.line_of("default_every"),
                    format!("default_every = {v}: not a number of ticks"),
                ),
            }
            if default_every != 1 {
                let _ = writeln!(out, "default_every = {default_every}");
            }
        }
        if let Some(v) = self.setting("default_error_every") {
            // -1 (any negative) is picomon.py's "same as every": picomon's
            // absent key.
            if v.as_f64().is_some_and(|n| n > 0.0) {
                if let Some(n) = self.ticks(
                    "default_error_every",
                    v,
                    self.line_of("default_error_every"),
                ) {
                    let _ = writeln!(out, "default_error_every = {n}");
                }
            }
        }
        out.push_str(
            "# picomon.py mailed at the retry-th failed run in a row, picomon at the\n\
             # (retry + 1)-th: every retry here is picomon.py's minus one (its default 1,\n\
             # and 0, which also mailed at the first failed run, are 0).\n\
             default_retry = 0\n",
        );
        if let Some(v) = self.setting("verb_level") {
            match log_level(v) {
                Some("info") => {}
                Some(level) => {
                    let _ = writeln!(out, "log_level = \"{level}\"");
                }
                None => self.keep(
                    self.line_of("verb_level"),
                    format!("verb_level = {v}: not a logging level"),
                ),
            }
        }
        for item in self.d.not_checks.clone() {
            self.keep(0, format!("{item} in config.checks is not a Check"));
        }
        for s in self.d.settings.clone() {
            if !s.known {
                self.keep(
                    s.line,
                    format!(
                        "config.{} = {}: installed by the config itself, picomon has no such key",
                        s.key, s.value
                    ),
                );
            }
        }
        out.push_str(
            "# Two picomon behaviours picomon.py did not have: more than 5 switches in one tick\n\
             # go out as one digest mail ([emails] digest_over = 0: one mail each), and a check\n\
             # whose result changes more than 4 times in its last 10 runs is flapping: one mail,\n\
             # then quiet until it settles (flap_switches = 0: a mail at every switch).\n",
        );
        default_every
    }

    /// A number of ticks (`every`, `error_every`): a whole number from 1.
    fn ticks(&mut self, what: &str, v: &Value, line: u32) -> Option<i64> {
        let n = v.as_f64().filter(|n| n.is_finite())?;
        if n < 1.0 {
            return None;
        }
        let whole = n.round();
        if whole != n {
            self.warn(
                line,
                format!("{what} = {n} is not a whole number of ticks: rounded to {whole}"),
            );
        }
        Some(whole as i64)
    }

    fn emails(&mut self, out: &mut String) {
        let mut lines = String::new();
        if let Some(v) = self.setting("emails.to") {
            match v
                .as_array()
                .and_then(|a| a.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
            {
                Some(to) if to.is_empty() => {}
                Some(to) => {
                    let _ = writeln!(lines, "to = {}", array(to.iter().map(|s| string(s))));
                }
                None => self.keep(
                    self.line_of("emails.to"),
                    format!("emails.to = {v}: not a list of addresses"),
                ),
            }
        }
        let default_from = self.d.default_from.clone();
        let strings: [(&str, &str, Option<&str>); 4] = [
            ("emails.addr_from", "from", Some(default_from.as_str())),
            ("emails.smtp_host", "smtp_host", Some("localhost:25")),
            ("emails.subject_tpl", "subject_tpl", Some(PICOMON_SUBJECT)),
            (
                "emails.watchdog_subject",
                "watchdog_subject",
                Some(PICOMON_WATCHDOG),
            ),
        ];
        for (key, toml_key, default) in strings {
            self.string_key(&mut lines, key, toml_key, default);
        }
        for (key, toml_key) in [
            ("emails.smtp_keepalive_timeout", "smtp_keepalive_timeout"),
            ("emails.smtp_retry_timeout", "smtp_retry_timeout"),
        ] {
            if let Some(v) = self.setting(key) {
                match positive(v) {
                    Some(60.0) => {}
                    Some(n) => {
                        let _ = writeln!(lines, "{toml_key} = {}", number(n));
                    }
                    None => self.keep(
                        self.line_of(key),
                        format!("{key} = {v}: not a positive number"),
                    ),
                }
            }
        }
        if !lines.is_empty() {
            let _ = write!(out, "\n[emails]\n{lines}");
        }
        let mut report = String::new();
        if let Some(v) = self.setting("emails.report.every") {
            match v.as_f64().filter(|n| n.is_finite() && *n >= 0.0) {
                Some(0.0) => {}
                Some(n) => {
                    let _ = writeln!(report, "every = {}", number(n));
                }
                None => self.keep(
                    self.line_of("emails.report.every"),
                    format!("emails.report.every = {v}: not a number of seconds"),
                ),
            }
        }
        self.string_key(
            &mut report,
            "emails.report.subject",
            "subject",
            Some(PICOMON_REPORT),
        );
        if !report.is_empty() {
            let _ = write!(out, "\n[emails.report]\n{report}");
        }
    }

    fn string_key(&mut self, out: &mut String, key: &str, toml_key: &str, default: Option<&str>) {
        let Some(v) = self.setting(key) else { return };
        match v.as_str() {
            Some(s) if Some(s) == default => {}
            Some(s) => {
                let _ = writeln!(out, "{toml_key} = {}", string(s));
            }
            None => self.keep(self.line_of(key), format!("{key} = {v}: not a string")),
        }
    }

    /// The `[hosts.*]` tables; returns each host's key.
    fn hosts(&mut self, out: &mut String, tables: &[Table]) -> Vec<String> {
        let mut used: Vec<BTreeSet<u8>> = vec![BTreeSet::new(); self.d.hosts.len()];
        for table in tables {
            for on in &table.hosts {
                if let Some(u) = used.get_mut(on.host) {
                    u.extend(&on.families);
                }
            }
        }
        let mut taken = BTreeSet::new();
        let mut keys = Vec::new();
        for (i, host) in self.d.hosts.iter().enumerate() {
            let hint = host
                .var
                .clone()
                .or_else(|| host.name.as_str().map(slug))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| format!("host{}", i + 1));
            keys.push(unique(&mut taken, &hint));
        }
        for (i, host) in self.d.hosts.clone().iter().enumerate() {
            let key = &keys[i];
            let mut lines = String::new();
            for (family, field, v) in [(4u8, "ipv4", &host.ipv4), (6, "ipv6", &host.ipv6)] {
                let given = host.given.iter().any(|g| g == field);
                let checked = used[i].contains(&family);
                if !given && !checked {
                    continue;
                }
                match v.as_str() {
                    Some(addr) => {
                        if !given {
                            self.warn(
                                host.line,
                                format!(
                                    "host {key}: picomon.py checked its default {field} {addr}, kept"
                                ),
                            );
                        }
                        let _ = writeln!(lines, "{field} = {}", string(addr));
                    }
                    None if checked => self.keep(
                        host.line,
                        format!("host {key}: {field} = {v} is not an address, yet checked"),
                    ),
                    None => {}
                }
            }
            if lines.is_empty() {
                self.keep(host.line, format!("host {key}: no address"));
                continue;
            }
            if let Some(name) = host.name.as_str().filter(|n| n != key) {
                let _ = writeln!(lines, "name = {}", string(name));
            }
            let _ = write!(
                out,
                "\n# {} line {}\n[hosts.{}]\n{lines}",
                self.d.file,
                host.line,
                toml_key(key)
            );
        }
        keys
    }

    /// Gathers the instances into picomon checks.
    fn checks(&mut self, default_every: i64) -> Vec<Table> {
        let default_error_every = self
            .setting("default_error_every")
            .and_then(Value::as_f64)
            .filter(|n| *n > 0.0)
            .map(|n| n.round() as i64);
        let mut tables: Vec<Table> = Vec::new();
        // (kind, fields, on hosts, zone) → index in `tables`.
        let mut by_shape: BTreeMap<String, usize> = BTreeMap::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for inst in self.d.checks.clone() {
            let Some((kind, fields, notes)) =
                self.instance(&inst, default_every, default_error_every)
            else {
                continue;
            };
            let on_host = inst.host.zip(inst.family);
            let zone = inst.zone.as_str().map(str::to_string);
            let shape = format!(
                "{kind}\n{fields:?}\n{}\n{}",
                on_host.is_some(),
                zone.is_some()
            );
            let identity = format!("{shape}\n{on_host:?}\n{zone:?}");
            if !seen.insert(identity) && (on_host.is_some() || zone.is_some()) {
                self.warn(
                    inst.line,
                    format!("{} runs twice on the same target with the same options: picomon runs it once", inst.class),
                );
                continue;
            }
            let grouped = (on_host.is_some() || zone.is_some())
                .then(|| by_shape.get(&shape).copied())
                .flatten();
            let index = match grouped {
                Some(i) => i,
                None => {
                    let name_hint = match (&on_host, kind.as_str()) {
                        (None, "command") => inst
                            .target_name
                            .as_str()
                            .filter(|t| *t != "Unknown")
                            .map(slug)
                            .filter(|s| !s.is_empty())
                            .unwrap_or_else(|| inst.class.clone()),
                        (_, "command") => inst.class.clone(),
                        (_, kind) => kind.to_string(),
                    };
                    tables.push(Table {
                        name_hint,
                        kind: kind.clone(),
                        fields: fields.clone(),
                        classes: Vec::new(),
                        lines: Vec::new(),
                        hosts: Vec::new(),
                        zones: Vec::new(),
                        notes: Vec::new(),
                    });
                    by_shape.insert(shape, tables.len() - 1);
                    tables.len() - 1
                }
            };
            let table = &mut tables[index];
            push_new(&mut table.classes, inst.class.clone());
            push_new(&mut table.lines, inst.line);
            for note in notes {
                push_new(&mut table.notes, note);
            }
            if let Some((h, family)) = on_host {
                let at = match table.hosts.iter().position(|on| on.host == h) {
                    Some(at) => at,
                    None => {
                        table.hosts.push(OnHost {
                            host: h,
                            families: BTreeSet::new(),
                            classes: Vec::new(),
                            lines: Vec::new(),
                        });
                        table.hosts.len() - 1
                    }
                };
                let on = &mut table.hosts[at];
                on.families.insert(family);
                push_new(&mut on.classes, inst.class.clone());
                push_new(&mut on.lines, inst.line);
            }
            if let Some(zone) = zone {
                table.zones.push(zone);
            }
        }
        // A picomon check runs on every host × every family of `ip`: hosts
        // with other families make another check.
        let mut split = Vec::new();
        for table in tables {
            let mut families: Vec<BTreeSet<u8>> = Vec::new();
            for on in &table.hosts {
                push_new(&mut families, on.families.clone());
            }
            if families.len() <= 1 {
                split.push(table);
                continue;
            }
            let Table {
                name_hint,
                kind,
                fields,
                hosts,
                notes,
                ..
            } = table;
            let mut by_families: Vec<Table> = Vec::new();
            for on in hosts {
                let at = families.iter().position(|f| *f == on.families).unwrap_or(0);
                while by_families.len() <= at {
                    by_families.push(Table {
                        name_hint: name_hint.clone(),
                        kind: kind.clone(),
                        fields: fields.clone(),
                        classes: Vec::new(),
                        lines: Vec::new(),
                        hosts: Vec::new(),
                        zones: Vec::new(),
                        notes: notes.clone(),
                    });
                }
                let part = &mut by_families[at];
                for c in &on.classes {
                    push_new(&mut part.classes, c.clone());
                }
                for l in &on.lines {
                    push_new(&mut part.lines, *l);
                }
                part.hosts.push(on);
            }
            split.extend(by_families);
        }
        split
    }

    /// One instance's type and keys (beyond hosts, ip and zones), or None
    /// when it is kept as a comment.
    fn instance(
        &mut self,
        inst: &Instance,
        default_every: i64,
        default_error_every: Option<i64>,
    ) -> Option<Made> {
        let what = |why: &str| format!("{}: {why}", inst.class);
        if inst.host.is_some() && inst.family.is_none() {
            self.keep(
                inst.line,
                what("its address is neither its host's ipv4 nor its ipv6"),
            );
            return None;
        }
        let mut fields = Vec::new();
        let mut notes = Vec::new();
        let own_class = inst.kind.is_none();
        if let Some(host) = inst
            .host
            .and_then(|h| self.d.hosts.get(h))
            .filter(|_| own_class)
        {
            // picomon names an instance's target after its host only (the
            // built-in classes did too; a subclass may have set another).
            if let (Some(target), Some(name)) = (inst.target_name.as_str(), host.name.as_str()) {
                if target != name {
                    let note = format!(
                        "target_name {target:?}: picomon names the target after the host, {name:?}"
                    );
                    self.warn(inst.line, format!("{}: {note}", inst.class));
                    notes.push(note);
                }
            }
        }
        let Some(every) = self.ticks("every", &inst.every, inst.line) else {
            self.keep(
                inst.line,
                what(&format!(
                    "every = {}: not a number of ticks from 1",
                    inst.every
                )),
            );
            return None;
        };
        if every != default_every {
            fields.push(("every".into(), every.to_string()));
        }
        let Some(py_retry) = inst.retry.as_f64().filter(|r| r.is_finite()) else {
            self.keep(
                inst.line,
                what(&format!("retry = {}: not a number", inst.retry)),
            );
            return None;
        };
        // `retry_count >= retry` with a fractional retry: the next whole.
        let retry = retry(py_retry.ceil() as i64);
        if retry != 0 {
            fields.push(("retry".into(), retry.to_string()));
        }
        let Some(error_every) = self.ticks("error_every", &inst.error_every, inst.line) else {
            self.keep(
                inst.line,
                what(&format!(
                    "error_every = {}: not a number of ticks",
                    inst.error_every
                )),
            );
            return None;
        };
        if error_every != default_error_every.unwrap_or(every) {
            fields.push(("error_every".into(), error_every.to_string()));
        }
        let options = inst.options.as_object().cloned().unwrap_or_default();
        let kind = match (&inst.kind, &inst.probe) {
            (Some(kind), _) => kind.clone(),
            (None, Some(_)) => "command".to_string(),
            (None, None) => {
                let why = inst.unprobed.as_deref().unwrap_or("no command to run");
                self.keep(
                    inst.line,
                    what(&format!(
                        "{why}; picomon runs one command per check (type = \"command\")"
                    )),
                );
                return None;
            }
        };
        let timeout = match (&inst.probe, kind.as_str()) {
            (Some(p), "command") => &p.timeout,
            _ => &inst.timeout,
        };
        match positive(timeout) {
            Some(t) if t == PY_TIMEOUT => {}
            Some(t) => fields.push(("timeout".into(), number(t))),
            None => {
                self.keep(
                    inst.line,
                    what(&format!("timeout = {timeout}: not a positive number")),
                );
                return None;
            }
        }
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match kind.as_str() {
            "http" | "https" => {
                if let Some(status) = options.get("status") {
                    match text(status).trim().parse::<i64>() {
                        Ok(n) => fields.push(("status".into(), n.to_string())),
                        Err(_) => {
                            self.keep(
                                inst.line,
                                what(&format!("status = {status}: not a status code")),
                            );
                            return None;
                        }
                    }
                }
                for key in ["vhost", "string", "url"] {
                    if let Some(v) = options.get(key) {
                        fields.push((key.into(), string(&text(v))));
                    }
                }
                if kind == "https" {
                    notes.push(
                        "picomon.py's check_http in SSL mode took any certificate; picomon checks it \
                         unless verify = false: remove that line once the certificate is trusted"
                            .into(),
                    );
                    fields.push(("verify".into(), "false".into()));
                }
            }
            "smtp" => {
                let from = options
                    .get("from_addr")
                    .map(text)
                    .unwrap_or_else(|| "picomon@localhost.local".into());
                fields.push(("from_addr".into(), string(&from)));
                for key in ["command", "response"] {
                    if let Some(v) = options.get(key) {
                        fields.push((key.into(), string(&text(v))));
                    }
                }
            }
            "dns-rec" => fields.push(("query".into(), string("www.google.com"))),
            "dns-zone" => {
                if inst.zone.as_str().is_none() {
                    self.keep(
                        inst.line,
                        what(&format!("zone {}: not a zone name", inst.zone)),
                    );
                    return None;
                }
                if let Some(v @ (4 | 6)) = options.get("ip_version").and_then(Value::as_i64) {
                    fields.push(("ip_version".into(), v.to_string()));
                }
            }
            "command" => {
                let Some(probe) = &inst.probe else {
                    return None;
                };
                fields.push((
                    "command".into(),
                    array(probe.argv.iter().map(|a| string(a))),
                ));
                if !probe.pattern.is_empty() {
                    fields.push(("pattern".into(), string(&probe.pattern)));
                }
            }
            _ => {}
        }
        if kind != "command" {
            for (key, value) in &options {
                if !COMMON.contains(&key.as_str()) && !inst.uses.contains(key) {
                    let note =
                        format!("{key} = {value}: picomon.py's {kind} checks ignored it, left out");
                    self.warn(inst.line, note.clone());
                    notes.push(note);
                }
            }
        }
        Some((kind, fields, notes))
    }

    fn tables(&mut self, out: &mut String, tables: Vec<Table>, keys: &[String]) {
        let mut taken = BTreeSet::new();
        for table in tables {
            let name = unique(&mut taken, &table.name_hint);
            let lines: Vec<String> = table.lines.iter().map(u32::to_string).collect();
            let _ = writeln!(
                out,
                "\n# {} ({} line{} {})",
                table.classes.join(", "),
                self.d.file,
                if lines.len() > 1 { "s" } else { "" },
                lines.join(", ")
            );
            for note in &table.notes {
                let _ = writeln!(out, "# {}", one_line(note));
            }
            let _ = writeln!(out, "[checks.{}]", toml_key(&name));
            let _ = writeln!(out, "type = {}", string(&table.kind));
            if !table.hosts.is_empty() {
                let hosts = table.hosts.iter().map(|on| string(&keys[on.host]));
                let _ = writeln!(out, "hosts = {}", array(hosts));
                let families = table
                    .hosts
                    .first()
                    .map(|on| on.families.clone())
                    .unwrap_or_default();
                let _ = writeln!(out, "ip = {}", array(families.iter().map(u8::to_string)));
            }
            if !table.zones.is_empty() {
                let _ = writeln!(
                    out,
                    "zones = {}",
                    array(table.zones.iter().map(|z| string(z)))
                );
            }
            for (key, value) in &table.fields {
                let _ = writeln!(out, "{key} = {value}");
            }
        }
    }
}

/// A TOML string.
fn string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML array of values already written as TOML.
fn array(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}

/// A number as TOML: whole numbers without a fraction.
fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn positive(v: &Value) -> Option<f64> {
    v.as_f64().filter(|n| n.is_finite() && *n > 0.0)
}

/// A table key: bare when TOML allows it.
fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        k.to_string()
    } else {
        string(k)
    }
}

/// A name for a check or host: letters, digits, `.`, `_` and `-`.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_alphanumeric() || c == '.' || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

fn unique(taken: &mut BTreeSet<String>, hint: &str) -> String {
    let mut name = hint.to_string();
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{hint}-{n}");
        n += 1;
    }
    name
}

/// Comment text on one line, control characters shown escaped.
fn one_line(s: &str) -> String {
    s.chars()
        .flat_map(char::escape_debug)
        .collect::<String>()
        .replace("\\\"", "\"")
        .replace("\\'", "'")
}

/// picomon's `log_level` for picomon.py's `verb_level` (a name or a number
/// of Python's logging module).
fn log_level(v: &Value) -> Option<&'static str> {
    if let Some(n) = v.as_i64() {
        return Some(match n {
            n if n >= 40 => "error",
            n if n >= 30 => "warn",
            n if n >= 20 => "info",
            n if n >= 10 => "debug",
            _ => "trace",
        });
    }
    match v.as_str()?.to_ascii_uppercase().as_str() {
        "CRITICAL" | "FATAL" | "ERROR" => Some("error"),
        "WARNING" | "WARN" => Some("warn"),
        "INFO" => Some("info"),
        "DEBUG" => Some("debug"),
        "NOTSET" => Some("trace"),
        _ => None,
    }
}
