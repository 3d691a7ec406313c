//! Instance patterns, as silences, maintenance windows, contacts and acks
//! name instances: `*` for any run of characters, the rest itself. Its own
//! file at the ground floor, since the configuration and the operator
//! commands above it all use it.

use regex::Regex;

/// A pattern compiled: `*` matches any run of characters (`/` too), all
/// else itself, and the whole id must match.
#[derive(Debug, Clone)]
pub(crate) struct Pattern(Regex);

impl Pattern {
    pub(crate) fn new(pattern: &str) -> Result<Pattern, String> {
        if pattern.is_empty() {
            return Err("the pattern is empty; `*` silences every check".into());
        }
        if pattern.chars().any(char::is_control) {
            return Err(format!("{pattern:?} holds a control character"));
        }
        let parts: Vec<String> = pattern.split('*').map(regex::escape).collect();
        Regex::new(&format!("^{}$", parts.join(".*")))
            .map(Pattern)
            .map_err(|e| format!("{pattern:?}: {e}"))
    }

    pub(crate) fn matches(&self, id: &str) -> bool {
        self.0.is_match(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_matches_any_run_of_characters_and_the_rest_itself() {
        let p = Pattern::new("web*/ipv4").expect("pattern");
        assert!(p.matches("web/front/ipv4"));
        assert!(p.matches("webmail/mx/ipv4"));
        assert!(!p.matches("web/front/ipv6"));
        assert!(!p.matches("oldweb/front/ipv4"));
        let dots = Pattern::new("a.b/*").expect("pattern");
        assert!(dots.matches("a.b/h/ipv4"));
        assert!(!dots.matches("axb/h/ipv4"), "a dot is a dot");
        assert!(Pattern::new("*").expect("all").matches("anything/at/all"));
        assert!(Pattern::new("").is_err());
        assert!(Pattern::new("a\nb").is_err());
    }
}
