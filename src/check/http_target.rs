//! What the built-in https probe can ask for: the path of its request and
//! the name it presents (SNI and Host). One rule each, used both when the
//! configuration is loaded (so a bad `url` or `vhost` is exit 78 naming the
//! key, not a check that fails at every run) and by the probe itself.

/// Why `path` cannot be the path of a request, or None. A request line
/// holds it as it is, so it must not carry spaces or control characters.
pub(crate) fn path_problem(path: &str) -> Option<String> {
    match path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic()) {
        true => None,
        false => Some(format!(
            "the URL {path:?} must be a path starting with '/', without spaces or control characters"
        )),
    }
}

/// Why `name` cannot be presented to a TLS server, or None: it must be a
/// DNS name or an IP address.
pub(crate) fn vhost_problem(name: &str) -> Option<String> {
    match rustls::pki_types::ServerName::try_from(name) {
        Ok(_) => None,
        Err(_) => Some(format!("{name:?} is neither a DNS name nor an IP address")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_must_start_with_a_slash_and_hold_no_space_or_control() {
        assert_eq!(path_problem("/login?x=1"), None);
        for bad in ["login", "/a b", "/a\r\nX: y", ""] {
            assert!(path_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn a_vhost_is_a_dns_name_or_an_address() {
        for good in ["www.example.org", "192.0.2.1", "2001:db8::1", "localhost"] {
            assert_eq!(vhost_problem(good), None, "{good:?}");
        }
        for bad in ["a b", "", "exa mple.org", "-\n-"] {
            assert!(vhost_problem(bad).is_some(), "{bad:?}");
        }
    }
}
