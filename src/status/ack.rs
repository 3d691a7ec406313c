//! `picomon ack ID-or-PATTERN --reason TEXT`: acknowledges outages in the
//! running daemon, over the status socket, since the daemon loop owns
//! the states (a file the daemon reads, as silences are, would let an ack
//! land on an outage that has just ended). Who acknowledged is the user
//! running the command (and the one behind sudo).

use std::path::Path;
use std::process::ExitCode;

use crate::config::{Config, ConfigError};
use crate::status::socket::{self, AckRequest};

/// The name of user `uid` in /etc/passwd, else `uid N`.
fn user_name(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id = fields.nth(1)?.parse::<u32>().ok()?;
            (id == uid).then(|| name.to_string())
        })
        .next()
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// Who runs this: `alice`, or `root (sudo: alice)`.
fn who() -> String {
    let me = user_name(crate::sys::euid());
    match std::env::var("SUDO_USER") {
        Ok(behind)
            if !behind.is_empty() && behind != me && !behind.chars().any(char::is_control) =>
        {
            format!("{me} (sudo: {behind})")
        }
        _ => me,
    }
}

/// `picomon ack`.
pub(crate) fn command(main: &Path, pattern: &str, reason: &str) -> anyhow::Result<ExitCode> {
    let config = Config::load_with(main, false)?;
    let Some(dir) = config.state_dir.as_deref() else {
        return Err(ConfigError {
            problems: vec![format!(
                "{}: state_dir: not set; picomon ack reaches the daemon through state_dir, so it needs one",
                main.display()
            )],
        }
        .into());
    };
    let request = AckRequest {
        pattern: pattern.to_string(),
        reason: reason.trim().to_string(),
        by: who(),
    };
    let reply = match socket::ack(dir, &request) {
        Ok(Ok(reply)) => reply,
        Ok(Err(why)) => {
            eprintln!("picomon: error: {why}");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => {
            eprintln!("picomon: error: {e}; nothing acknowledged");
            return Ok(ExitCode::FAILURE);
        }
    };
    for id in &reply.acked {
        println!("{id}: acknowledged by {}: {}", request.by, request.reason);
    }
    if !reply.not_failing.is_empty() {
        println!(
            "not failing, nothing to acknowledge: {}",
            reply.not_failing.join(", ")
        );
    }
    if reply.acked.is_empty() {
        eprintln!("picomon: error: {pattern:?}: no failing instance to acknowledge");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
