//! The sections of push checks and of the dead man's switch: each push
//! check's `period`, `grace` and `token_file`, the `[push]` listener and
//! the `[heartbeat]`, validated here so that every error names its key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::raw::{CheckType, RawConfig, RawHeartbeat, RawPush};
use super::validate::{Seconds, Validator};
use crate::dead_mans_switch::{Heartbeat, Ping};
use crate::push::{default_grace, Rule};

/// `every` of `[heartbeat]` when it is not set.
const DEFAULT_HEARTBEAT_EVERY: f64 = 60.0;

impl Validator {
    /// Every enabled push check's rule, by check name.
    pub(super) fn push_rules(&mut self, raw: &RawConfig) -> BTreeMap<String, Rule> {
        let mut rules = BTreeMap::new();
        for (name, check) in &raw.checks {
            if check.kind != CheckType::Push || check.enabled == Some(false) {
                continue;
            }
            let at = format!("checks.{name}");
            let Some(period) = check.period else {
                self.bad(
                    &format!("{at}.period"),
                    "a push check needs period = SECONDS: how often a push is expected",
                );
                continue;
            };
            let period = self.secs(&format!("{at}.period"), period, Seconds::YEAR);
            let grace = match check.grace {
                Some(0.0) => Duration::ZERO,
                Some(g) => self.secs(&format!("{at}.grace"), g, Seconds::YEAR),
                None => default_grace(period),
            };
            if let Some(file) = check.token_file.as_ref().filter(|_| self.on_this_machine) {
                // Read as the daemon will read it, per request: a missing or
                // unreadable token is a configuration error now, not a 403
                // to every pusher later.
                if let Some(token) = self.password_file(&format!("{at}.token_file"), file) {
                    if token.trim().is_empty() {
                        self.bad(
                            &format!("{at}.token_file"),
                            format!("{} is empty: no token to check", file.display()),
                        );
                    }
                }
            }
            rules.insert(
                name.clone(),
                Rule {
                    period,
                    grace,
                    token_file: check.token_file.clone(),
                },
            );
        }
        rules
    }

    /// `[push] listen`: where pushes over HTTP are taken, if anywhere.
    pub(super) fn push_listen(&mut self, raw: Option<&RawPush>) -> Option<SocketAddr> {
        let listen = raw?.listen.as_ref()?;
        match listen.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.bad(
                    "push.listen",
                    format!("{listen:?} is not ADDRESS:PORT (e.g. \"127.0.0.1:8789\" or \"[::1]:8789\")"),
                );
                None
            }
        }
    }

    /// `[heartbeat]`: `url` or `command`, and `every`.
    pub(super) fn heartbeat(&mut self, raw: Option<&RawHeartbeat>) -> Option<Heartbeat> {
        let raw = raw?;
        let every = self.secs(
            "heartbeat.every",
            raw.every.unwrap_or(DEFAULT_HEARTBEAT_EVERY),
            Seconds::DAY,
        );
        if every < Duration::from_secs(1) {
            self.bad("heartbeat.every", "must be at least 1 second");
        }
        let ping = match (&raw.url, &raw.command) {
            (Some(_), Some(_)) => {
                self.bad("heartbeat.command", "set url or command, not both");
                return None;
            }
            (None, None) => {
                self.bad(
                    "heartbeat",
                    "needs url = \"https://…\" (fetched with GET) or command = [\"program\", …]",
                );
                return None;
            }
            (Some(url), None) => {
                let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
                let rest = url.split_once("://").map_or("", |(_, r)| r);
                if !matches!(scheme.as_deref(), Some("http" | "https")) || rest.is_empty() {
                    self.bad(
                        "heartbeat.url",
                        format!("{url:?} is not an http:// or https:// URL"),
                    );
                    return None;
                }
                if url.chars().any(|c| c.is_control() || c == ' ') {
                    self.bad(
                        "heartbeat.url",
                        "must not contain spaces or control characters",
                    );
                    return None;
                }
                Ping::Url(url.clone())
            }
            (None, Some(argv)) if argv.first().is_some_and(|a| !a.is_empty()) => {
                Ping::Command(argv.clone())
            }
            (None, Some(_)) => {
                self.bad(
                    "heartbeat.command",
                    "must not be empty: give the program and its arguments",
                );
                return None;
            }
        };
        Some(Heartbeat { ping, every })
    }
}
