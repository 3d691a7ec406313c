//! The layers of the configuration, merged with figment in their documented
//! order: built-in defaults, the main file, `NAME.d/*.toml` fragments in
//! lexical order, then `PICOMON_*` environment variables.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;

use super::error::ConfigError;
use super::raw::RawConfig;

/// Every `PICOMON_*` variable is configuration; `__` separates nested keys.
pub const ENV_PREFIX: &str = "PICOMON_";

/// The merged layers: the figment (kept to tell where a key came from) and
/// the raw configuration extracted from it.
pub(crate) struct Layers {
    pub figment: Figment,
    pub raw: RawConfig,
    pub files: Vec<PathBuf>,
}

/// The fragment directory of a main file: `site.toml` → `site.d`.
pub fn fragment_dir(main: &Path) -> PathBuf {
    let stem = match main.extension() {
        Some(ext) if ext == "toml" => main.with_extension(""),
        _ => main.to_path_buf(),
    };
    let mut dir = stem.into_os_string();
    dir.push(".d");
    PathBuf::from(dir)
}

/// The fragments of `dir`, `*.toml` only, in lexical order. A missing
/// directory has none; an unreadable one is an error.
fn fragments(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ConfigError::one(format!(
                "{}: cannot read fragment directory: {e}",
                dir.display()
            )))
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            ConfigError::one(format!("{}: cannot list fragments: {e}", dir.display()))
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads and merges every layer. Files are read up front so that a missing
/// or unreadable main file is reported as such, not as an empty layer.
pub(crate) fn load(main: &Path) -> Result<Layers, ConfigError> {
    match std::fs::metadata(main) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => {
            return Err(ConfigError::one(format!(
                "{}: not a regular file",
                main.display()
            )))
        }
        Err(e) => {
            return Err(ConfigError::one(format!(
                "{}: cannot read configuration: {e}",
                main.display()
            )))
        }
    }
    let mut files = vec![main.to_path_buf()];
    files.extend(fragments(&fragment_dir(main))?);

    let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
    for file in &files {
        // An unreadable file must not silently become an empty layer.
        if let Err(e) = std::fs::File::open(file) {
            return Err(ConfigError::one(format!(
                "{}: cannot read configuration: {e}",
                file.display()
            )));
        }
        figment = figment.merge(Toml::file_exact(file));
    }
    figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));

    let raw: RawConfig = figment
        .extract()
        .map_err(|e| ConfigError::from_figment(&figment, e))?;
    Ok(Layers {
        figment,
        raw,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_dir_replaces_the_toml_extension() {
        assert_eq!(
            fragment_dir(Path::new("/etc/picomon.toml")),
            PathBuf::from("/etc/picomon.d")
        );
        assert_eq!(
            fragment_dir(Path::new("site.toml")),
            PathBuf::from("site.d")
        );
        assert_eq!(fragment_dir(Path::new("conf")), PathBuf::from("conf.d"));
    }
}
