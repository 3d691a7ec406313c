//! The Debian mirror apt on this machine is configured with, read from
//! apt's own sources (deb822 `*.sources` and one-line `*.list` files), so
//! that debootstrap fetches from where this machine may fetch, and no
//! host is written in the test.

use std::path::Path;

/// The suite the package is built for and tested on.
pub(crate) const SUITE: &str = "bookworm";

/// The first mirror apt has for `SUITE`; a clear panic when none.
#[track_caller]
pub(crate) fn mirror() -> String {
    let mut files = vec![Path::new("/etc/apt/sources.list").to_path_buf()];
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let name = file.to_string_lossy();
        let found = if name.ends_with(".sources") {
            from_deb822(&text, SUITE)
        } else if name.ends_with(".list") {
            from_one_line(&text, SUITE)
        } else {
            None
        };
        if let Some(uri) = found {
            return uri;
        }
    }
    panic!("apt has no source for Debian {SUITE} (in /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources): debootstrap needs its mirror")
}

/// The first URI of an enabled `deb` stanza that has `suite` exactly.
fn from_deb822(text: &str, suite: &str) -> Option<String> {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    for stanza in lines.split(|l| l.trim().is_empty()) {
        let field = |name: &str| {
            stanza.iter().find_map(|l| {
                let (key, value) = l.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_string())
            })
        };
        let words = |name: &str| field(name).unwrap_or_default();
        let enabled = !matches!(field("Enabled"), Some(v) if v.eq_ignore_ascii_case("no"));
        if enabled
            && words("Types").split_whitespace().any(|t| t == "deb")
            && words("Suites").split_whitespace().any(|s| s == suite)
        {
            if let Some(uri) = words("URIs").split_whitespace().next() {
                return Some(uri.to_string());
            }
        }
    }
    None
}

/// The URI of the first `deb [options] URI SUITE COMPONENTS` line.
fn from_one_line(text: &str, suite: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let rest = line.trim().strip_prefix("deb ")?.trim_start();
        // Options in brackets come first, and may hold spaces.
        let rest = match rest.strip_prefix('[') {
            Some(opts) => opts.split_once(']')?.1,
            None => rest,
        };
        let mut words = rest.split_whitespace();
        let uri = words.next()?;
        (words.next()? == suite).then(|| uri.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_is_the_uri_of_the_bookworm_stanza() {
        let text = "\
Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

# a comment between stanzas
Types: deb-src deb
URIs: http://mirror.example/debian http://other.example/debian
Suites: bookworm bookworm-updates
Components: main
";
        assert_eq!(
            from_deb822(text, "bookworm").as_deref(),
            Some("http://mirror.example/debian")
        );
        let disabled = "Types: deb\nURIs: http://a.example/\nSuites: bookworm\nEnabled: no\n";
        assert_eq!(from_deb822(disabled, "bookworm"), None);
        let source_only = "Types: deb-src\nURIs: http://a.example/\nSuites: bookworm\n";
        assert_eq!(from_deb822(source_only, "bookworm"), None);
    }

    #[test]
    fn the_mirror_is_the_uri_of_the_bookworm_line() {
        let text = "\
# deb http://commented.example/debian bookworm main
deb http://mirror.example/debian-security bookworm-security main
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main # main
";
        assert_eq!(
            from_one_line(text, "bookworm").as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(
            from_one_line("deb-src http://a.example/ bookworm main\n", "bookworm"),
            None
        );
    }
}
