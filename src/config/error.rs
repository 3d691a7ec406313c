//! Configuration errors, and where a key came from: every message names
//! the file or the environment variable that set the key at fault, so an
//! operator knows what to edit.

use std::fmt;

use figment::Figment;

/// Every `PICOMON_*` variable is configuration; `__` separates nested
/// keys. It lives with the origins, since naming a variable is how an
/// error points at one.
pub const ENV_PREFIX: &str = "PICOMON_";

/// Invalid configuration: one line per problem. Exits with EX_CONFIG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    /// Rewrites figment's errors as `WHERE: KEY: WHAT`, where WHERE is the
    /// file or the environment variable that set the key. figment leaves
    /// out where some errors come from (a key missing from a table, say):
    /// those are looked up in `figment`, the layers merged.
    /// A picomon.py configuration given where picomon's TOML belongs.
    pub(super) fn python(main: &std::path::Path) -> ConfigError {
        let shown = shown(&main.display().to_string());
        ConfigError {
            problems: vec![format!(
                "{shown}: a picomon.py configuration (Python), not picomon's TOML: \
                 run `picomon migrate {shown} > picomon.toml` and use that"
            )],
        }
    }

    pub(super) fn from_figment(figment: &Figment, err: figment::Error) -> ConfigError {
        let problems = err
            .into_iter()
            .map(|e| {
                let key = e.path.join(".");
                let origin = match &e.metadata {
                    Some(md) => describe(md, &key),
                    None => origin(figment, &key),
                };
                let what = match &e.kind {
                    figment::error::Kind::UnknownField(found, known) => {
                        format!(
                            "unknown key `{found}`; known keys here: {}",
                            known.join(", ")
                        )
                    }
                    kind => kind.to_string().trim_end().replace('\n', "\n    "),
                };
                if key.is_empty() {
                    format!("{origin}: {what}")
                } else {
                    format!("{origin}: {}: {what}", shown(&key))
                }
            })
            .collect();
        ConfigError { problems }
    }
}

/// `key` for a message. A key is the operator's text: a control character
/// in it (a check named "a\nb") is shown escaped, not sent to the terminal
/// or the journal, where it would split the message.
pub(super) fn shown(key: &str) -> String {
    crate::human::escape_controls(key).into_owned()
}

/// Where the value of `key` came from, for an error message: the
/// environment variable that set it, or its file. A key that is not set
/// (a required key left out) is blamed on the nearest table that is: the
/// file or the variables that made `[checks.web]` are where `type` is
/// missing. Never just "configuration": the operator needs a place to edit.
pub(super) fn origin(figment: &Figment, key: &str) -> String {
    let mut at = key;
    loop {
        if let Some(md) = figment.find_metadata(at) {
            return match at.len() < key.len() && is_env(md) {
                // `PICOMON_CHECKS__WEB__*`: the variables under that table.
                true => format!("{}__*", env_var(at)),
                false => describe(md, key),
            };
        }
        match at.rsplit_once('.') {
            Some((parent, _)) => at = parent,
            None => break,
        }
    }
    everywhere(figment)
}

/// The file or variable of `key` as set by the layer `md`.
fn describe(md: &figment::Metadata, key: &str) -> String {
    if is_env(md) {
        return env_var(key);
    }
    match &md.source {
        Some(source) => place(source),
        None => "built-in defaults".to_string(),
    }
}

/// A layer's file as picomon was told it: figment shows a file relative
/// to the current directory, so that run from `/` an error named
/// `etc/picomon.toml`.
fn place(source: &figment::Source) -> String {
    match source {
        figment::Source::File(path) => path.display().to_string(),
        other => other.to_string(),
    }
}

fn is_env(md: &figment::Metadata) -> bool {
    md.name.contains("environment")
}

/// The variable that sets `key`: `emails.smtp_host` → `PICOMON_EMAILS__SMTP_HOST`.
pub(super) fn env_var(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase())
}

/// Every layer that was read, for a problem no single key explains.
fn everywhere(figment: &Figment) -> String {
    let mut places: Vec<String> = figment
        .metadata()
        .filter_map(|md| match (&md.source, is_env(md)) {
            (_, true) => Some(format!("{ENV_PREFIX}* variables")),
            (Some(source), false) => Some(place(source)),
            (None, false) => None,
        })
        .collect();
    places.dedup();
    match places.is_empty() {
        true => "built-in defaults".to_string(),
        false => places.join(" or "),
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration")?;
        for p in &self.problems {
            write!(f, "\n -> {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
