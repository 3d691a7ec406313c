//! Configuration errors, and where a key came from: every message names
//! the file or the environment variable that set the key at fault, so an
//! operator knows what to edit.

use std::fmt;

use super::load::ENV_PREFIX;

/// Invalid configuration: one line per problem. Exits with EX_CONFIG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    pub(super) fn one(problem: String) -> ConfigError {
        ConfigError {
            problems: vec![problem],
        }
    }

    /// Rewrites figment's errors as `WHERE: KEY: WHAT`, where WHERE is the
    /// file or the environment variable that set the key.
    pub(super) fn from_figment(err: figment::Error) -> ConfigError {
        let problems = err
            .into_iter()
            .map(|e| {
                let key = e.path.join(".");
                let origin = origin(e.metadata.as_ref(), &key);
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
                    format!("{origin}: {key}: {what}")
                }
            })
            .collect();
        ConfigError { problems }
    }
}

/// Where the value of `key` came from, for an error message: the
/// environment variable that set it, or its file.
pub(super) fn origin(metadata: Option<&figment::Metadata>, key: &str) -> String {
    match metadata {
        Some(md) if md.name.contains("environment") => {
            format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase())
        }
        Some(md) => md
            .source
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "built-in defaults".to_string()),
        None => "configuration".to_string(),
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
