//! The TOML picomon reads: basic-toml behind figment's `Format`, with a
//! bound on nesting. Its own file because both the layered loader
//! (`load`) and the one-check-at-a-time reader (`sections`) parse with
//! it, and `sections` also needs to know where a string ends.

use figment::providers::Format;

/// TOML for figment, read by basic-toml: straight from the text into
/// figment's values, where figment's own TOML provider (toml 0.8) first
/// builds an editable document of the whole file, 1.2 MiB for 1,000
/// checks at the moment the daemon's memory peaks.
pub(super) struct Toml;

impl Format for Toml {
    type Error = figment::Error;

    const NAME: &'static str = "TOML";

    fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Self::Error> {
        let depth = nesting(text);
        if depth > MAX_NESTING {
            return Err(figment::Error::from(format!(
                "nested {depth} levels deep (arrays, inline tables and dotted keys), more than the {MAX_NESTING} picomon reads"
            )));
        }
        basic_toml::from_str(text).map_err(|e| figment::Error::from(e.to_string()))
    }
}

/// basic-toml recurses once per level of nesting, with no limit of its
/// own: a hostile file of 5,000 nested arrays overflowed the stack. A
/// configuration needs 3 or 4 levels.
const MAX_NESTING: usize = 64;

/// How deep `text` nests at most, over-counted: open arrays and inline
/// tables, plus the dots of the line so far (dotted keys, and also those
/// of numbers), outside strings and comments.
fn nesting(text: &str) -> usize {
    let b = text.as_bytes();
    let (mut i, mut open, mut dots, mut deepest) = (0, 0usize, 0usize, 0usize);
    while i < b.len() {
        match b[i] {
            b'\n' => dots = 0,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            quote @ (b'"' | b'\'') => {
                i = string_end(b, i, quote);
                continue;
            }
            b'[' | b'{' => open += 1,
            b']' | b'}' => open = open.saturating_sub(1),
            b'.' => dots += 1,
            _ => {}
        }
        deepest = deepest.max(open + dots);
        i += 1;
    }
    deepest
}

/// Where the string opened by `quote` at `start` ends (just past it): a
/// basic string ("…", with backslash escapes) or a literal one ('…'),
/// each on one line or, tripled, over several.
pub(super) fn string_end(b: &[u8], start: usize, quote: u8) -> usize {
    let triple = b[start..].starts_with(&[quote; 3]);
    let mut i = start + if triple { 3 } else { 1 };
    while i < b.len() {
        if quote == b'"' && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if triple && b[i..].starts_with(&[quote; 3]) {
            // Up to two more quotes may end the string's own text.
            i += 3;
            while i < b.len() && b[i] == quote {
                i += 1;
            }
            return i;
        }
        if !triple && (b[i] == quote || b[i] == b'\n') {
            return i + 1;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_counts_brackets_and_dots_outside_strings_and_comments() {
        assert_eq!(nesting("a = 1\n"), 0);
        assert_eq!(nesting("[checks.web]\ncommand = [\"a\", \"b\"]\n"), 2);
        assert_eq!(nesting("a = \"[[[[.]]\" # [[[[[\n"), 0);
        assert_eq!(nesting("a = '[[[[' \nb = '''\n[[[[\n''' \n"), 0);
        assert_eq!(nesting("a = \"\\\"[[[\"\n"), 0);
        assert_eq!(nesting("a = \"\"\"x\"[[[\"\"\"\n"), 0);
        assert_eq!(nesting("a = [[[1]], {b = {c = 2}}]\n"), 3);
        assert_eq!(nesting(&format!("{} = 1\n", vec!["a"; 100].join("."))), 99);
    }
}
