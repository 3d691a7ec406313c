//! A main file read one check at a time: every `[checks.NAME]` table
//! (with its sub-tables) is parsed on its own, and the rest of the file
//! once, so that the parser's tree of the whole file never exists. That
//! tree was most of the daemon's peak memory: with 10,000 checks, 11 MiB
//! of basic-toml's tables beside the 6 MiB of checks being read from
//! them, where each check alone costs its parser a kilobyte for a moment.
//!
//! Only what is plainly a table header is split on; whatever reads
//! otherwise (a name given twice, a header this does not read) makes
//! `read` give up, and the whole file is then read as before, for its
//! errors.

use std::collections::BTreeMap;
use std::ops::Range;

use figment::providers::Format;
use serde::Deserialize;

use super::raw::{RawCheck, RawConfig};
use super::toml_format::{string_end, Toml};

/// One check's tables, read on their own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Checks {
    checks: BTreeMap<String, Box<RawCheck>>,
}

/// What a table header opens.
#[derive(Debug, PartialEq, Eq)]
enum Header {
    /// `[checks.NAME]` or `[checks.NAME.SUB…]`.
    Check(String),
    /// Any other table: part of the rest of the file.
    Other,
}

/// The configuration of `text`, its checks read one at a time; None when
/// the text does not split plainly or a piece does not read.
pub(super) fn read(text: &str) -> Option<RawConfig> {
    let (rest, checks) = split(text)?;
    let mut raw: RawConfig = Toml::from_str(&rest).ok()?;
    drop(rest);
    for (name, range) in checks {
        let piece: Checks = Toml::from_str(&text[range]).ok()?;
        for (key, check) in piece.checks {
            // A name seen twice is TOML's error (or a layout this does not
            // follow): the whole file tells which.
            if key != name || raw.checks.insert(key, check).is_some() {
                return None;
            }
        }
    }
    Some(raw)
}

/// The text without its check tables, and each check's name with the
/// range of its tables.
type Split = (String, Vec<(String, Range<usize>)>);

/// The text without its check tables, and each check's tables: the range
/// from its first header to the next table of another check or of
/// something else.
fn split(text: &str) -> Option<Split> {
    let b = text.as_bytes();
    // Where each table starts, and what it opens.
    let mut headers: Vec<(usize, Header)> = Vec::new();
    let (mut i, mut open, mut line_start) = (0, 0usize, true);
    while i < b.len() {
        match b[i] {
            b'\n' => {
                line_start = true;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' if line_start => {
                i += 1;
                continue;
            }
            b'[' if line_start && open == 0 => {
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |n| i + n);
                headers.push((i, header(&text[i..end])?));
                i = end;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            quote @ (b'"' | b'\'') => {
                i = string_end(b, i, quote);
                line_start = false;
                continue;
            }
            b'[' | b'{' => open += 1,
            b']' | b'}' => open = open.checked_sub(1)?,
            _ => {}
        }
        line_start = false;
        i += 1;
    }
    let mut rest = String::new();
    let mut checks: Vec<(String, Range<usize>)> = Vec::new();
    rest.push_str(&text[..headers.first().map_or(text.len(), |(at, _)| *at)]);
    for (n, (at, kind)) in headers.iter().enumerate() {
        let end = headers.get(n + 1).map_or(text.len(), |(next, _)| *next);
        match kind {
            Header::Other => {
                rest.push_str(&text[*at..end]);
                // A table of its own: whatever follows is not its value.
                rest.push('\n');
            }
            Header::Check(name) => match checks.last_mut() {
                Some((last, range)) if last == name && range.end == *at => range.end = end,
                _ => checks.push((name.clone(), *at..end)),
            },
        }
    }
    Some((rest, checks))
}

/// What the header line `line` (starting at its `[`) opens; None for a
/// header this does not read plainly.
fn header(line: &str) -> Option<Header> {
    let inner = line.strip_prefix('[')?;
    if inner.starts_with('[') {
        // An array of tables: picomon has none, TOML's error tells.
        return None;
    }
    let mut keys = Vec::new();
    let mut s = inner.trim_start();
    loop {
        let (key, after) = match s.as_bytes().first()? {
            b'"' => {
                let end = s[1..].find('"')? + 1;
                let key = &s[1..end];
                if key.contains('\\') {
                    return None;
                }
                (key, &s[end + 1..])
            }
            b'\'' => {
                let end = s[1..].find('\'')? + 1;
                (&s[1..end], &s[end + 1..])
            }
            _ => {
                let end = s
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                    .unwrap_or(s.len());
                if end == 0 {
                    return None;
                }
                (&s[..end], &s[end..])
            }
        };
        keys.push(key);
        s = after.trim_start();
        match s.as_bytes().first()? {
            b'.' => s = s[1..].trim_start(),
            b']' => {
                let tail = s[1..].trim_start();
                if !(tail.is_empty() || tail.starts_with('#')) {
                    return None;
                }
                break;
            }
            _ => return None,
        }
    }
    match keys.as_slice() {
        ["checks", name, ..] => Some(Header::Check((*name).to_string())),
        _ => Some(Header::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_plainly_or_not_at_all() {
        let check = |name: &str| Some(Header::Check(name.to_string()));
        assert_eq!(header("[checks.web]"), check("web"));
        assert_eq!(header("[ checks . \"a b\" . env ] # note"), check("a b"));
        assert_eq!(header("['checks'.x]"), check("x"));
        assert_eq!(header("[checks]"), Some(Header::Other));
        assert_eq!(header("[hosts.web]"), Some(Header::Other));
        assert_eq!(header("[[checks.web]]"), None);
        assert_eq!(header("[checks.\"a\\\"b\"]"), None);
        assert_eq!(header("[checks.web] x = 1"), None);
        assert_eq!(header("[checks.]"), None);
    }

    #[test]
    fn each_check_is_read_alone_and_the_rest_once() {
        let text = r#"base_tick = 5
# [checks.not_a_header]
[checks.a]
type = "command"
command = [
  ["nested"],
]
[checks.a.env]
X = """
[checks.in_a_string]
"""
[hosts.h]
ipv4 = "192.0.2.1"
[checks."b"]
type = "command"
command = ["/bin/true"]
"#;
        let (rest, checks) = split(text).expect("splits");
        let names: Vec<&str> = checks.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(
            rest.contains("base_tick") && rest.contains("[hosts.h]"),
            "{rest}"
        );
        assert!(!rest.contains("type"), "{rest}");
        assert!(text[checks[0].1.clone()].contains("[checks.in_a_string]"));
    }

    #[test]
    fn a_check_given_twice_is_left_to_the_whole_file() {
        let text = "[checks.a]\ntype = \"command\"\ncommand = [\"/bin/true\"]\n[hosts.h]\nipv4 = \"192.0.2.1\"\n[checks.a.env]\nX = \"1\"\n";
        assert!(split(text).is_some());
        assert!(read(text).is_none());
    }
}
