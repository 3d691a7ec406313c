//! The layers of the configuration, merged with figment in their documented
//! order: built-in defaults, the main file, `NAME.d/*.toml` fragments in
//! lexical order, then `PICOMON_*` environment variables.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized};
use figment::{Figment, Profile, Provider};
use serde::Deserialize;

use super::error::{ConfigError, ENV_PREFIX};
use super::raw::RawConfig;
use super::toml_format::Toml;

/// The merged layers: the raw configuration and the files it came from
/// (merged again by `merge` when an error must name the file of a key).
pub(crate) struct Layers {
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

/// The fragments of `dir`: `*.toml` files in lexical order. A missing
/// directory has none. Hidden names (`.x.toml`, and editors' lock files
/// such as Emacs' dangling `.#x.toml` links) are skipped, as documented;
/// any other `*.toml` entry is read or is an error, never skipped: a
/// dangling link, a directory, a FIFO or an unreadable file.
fn fragments(dir: &Path, problems: &mut Vec<String>) -> Vec<PathBuf> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => writable_by_others(dir, &meta, problems),
        Ok(_) => {
            problems.push(format!("{shown}: not a directory of fragments"));
            return Vec::new();
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            problems.push(format!("{shown}: cannot read fragment directory: {e}"));
            return Vec::new();
        }
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(format!("{shown}: cannot read fragment directory: {e}"));
            return Vec::new();
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                problems.push(format!("{shown}: cannot list fragments: {e}"));
                continue;
            }
        };
        let path = entry.path();
        let hidden = entry.file_name().as_encoded_bytes().starts_with(b".");
        if !hidden && path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    files.sort();
    files.retain(|file| config_file(file, problems));
    files
}

/// Whether `file` can be a layer: a readable regular file that no one but
/// its owner (and group, with a warning) may write. Says why not in
/// `problems`.
fn config_file(file: &Path, problems: &mut Vec<String>) -> bool {
    let shown = file.display();
    let meta = match std::fs::metadata(file) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.symlink_metadata().is_ok() => {
            problems.push(format!("{shown}: a symbolic link to nothing"));
            return false;
        }
        Err(e) => {
            problems.push(format!("{shown}: cannot read configuration: {e}"));
            return false;
        }
    };
    if !meta.is_file() {
        problems.push(format!("{shown}: not a regular file"));
        return false;
    }
    // An unreadable file must not silently become an empty layer.
    if let Err(e) = std::fs::File::open(file) {
        problems.push(format!("{shown}: cannot read configuration: {e}"));
        return false;
    }
    let before = problems.len();
    writable_by_others(file, &meta, problems);
    problems.len() == before
}

/// Whoever can write a configuration file or the fragment directory makes
/// picomon run commands of their choice, as picomon. Writable by anyone
/// is refused; by the group, warned about (a shared admin group may be
/// deliberate).
fn writable_by_others(path: &Path, meta: &std::fs::Metadata, problems: &mut Vec<String>) {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    let shown = path.display();
    if mode & 0o002 != 0 {
        problems.push(format!(
            "{shown}: writable by anyone (mode {mode:04o}), who could make picomon run any command: chmod o-w {shown}"
        ));
    } else if mode & 0o020 != 0 {
        log::warn!(
            "{shown}: writable by its group (mode {mode:04o}), whose members can make picomon run any command"
        );
    }
}

/// Reads and merges every layer. Files are checked up front so that a
/// missing, unreadable or unsafe file is reported as such, not read as an
/// empty layer.
pub(crate) fn load(main: &Path) -> Result<Layers, ConfigError> {
    let files = layer_files(main)?;
    let mut raw = extract(&files)?;
    if raw.state_dir.is_none() {
        raw.state_dir = super::paths::default_state_dir(main);
    }
    if let Some(in_force) = &raw.state_dir {
        if std::env::var_os(format!("{ENV_PREFIX}STATE_DIR")).is_some() {
            warn_state_dir_overridden(main, &files, in_force);
        }
    }
    Ok(Layers { raw, files })
}

/// The main file and its fragments, in merge order, each checked.
pub(super) fn layer_files(main: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let mut problems = Vec::new();
    if !config_file(main, &mut problems) {
        return Err(ConfigError { problems });
    }
    let mut files = vec![main.to_path_buf()];
    files.extend(fragments(&fragment_dir(main), &mut problems));
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    Ok(files)
}

/// The units set `PICOMON_STATE_DIR`, which wins over the files'
/// `state_dir`; an operator's `picomon status -c MAIN` runs without it and
/// would reach the directory the files name, another daemon's or none.
/// Said once per load, so that the journal of the unit tells.
fn warn_state_dir_overridden(main: &Path, files: &[PathBuf], in_force: &Path) {
    let from_files: Option<PathBuf> = files_merged(files).extract_inner("state_dir").ok();
    if let Some(from_files) = from_files.filter(|dir| dir != in_force) {
        log::warn!(
            "{}: state_dir {} is overridden by {ENV_PREFIX}STATE_DIR={}: `picomon status -c {0}` and `picomon silence -c {0}` reach {1}, not this daemon; remove state_dir from the file (its default is where the unit keeps state)",
            main.display(),
            from_files.display(),
            in_force.display()
        );
    }
}

/// Every file of `files`, merged over the defaults, without the
/// environment.
fn files_merged(files: &[PathBuf]) -> Figment {
    let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
    for file in files {
        figment = figment.merge(Toml::file_exact(file));
    }
    figment
}

/// Every layer of `files` (checked by `load`), merged by figment in the
/// documented order.
pub(super) fn merge(files: &[PathBuf]) -> Figment {
    files_merged(files).merge(Env::prefixed(ENV_PREFIX).split("__"))
}

/// The raw configuration of the merged layers.
///
/// figment's own `extract` reads a copy of its whole tree while keeping
/// the original, and the raw configuration grows beside both (with 1,000
/// checks, 2.8 MiB at once). Here the tree is copied out once and the
/// figment dropped before the raw configuration is read from the copy.
/// Only a configuration that fails (or a figment with more than its
/// default profile, which picomon never makes) goes through `extract`,
/// for its errors, which name the file or the variable of each key.
fn extract(files: &[PathBuf]) -> Result<RawConfig, ConfigError> {
    if let Some(raw) = extract_one_file(files) {
        return Ok(raw);
    }
    let tree = match merge(files).data() {
        Ok(mut profiles) => match profiles.remove(&Profile::Default) {
            Some(dict) if profiles.values().all(|d| d.is_empty()) => Some(dict),
            _ => None,
        },
        Err(_) => None,
    };
    if let Some(dict) = tree {
        let tree = figment::value::Value::from(dict);
        if let Ok(raw) = RawConfig::deserialize(&tree) {
            return Ok(raw);
        }
    }
    let figment = merge(files);
    figment
        .extract()
        .map_err(|e| ConfigError::from_figment(&figment, e))
}

/// The raw configuration of a main file alone (no fragment, no
/// `PICOMON_*` variable), read straight from its text: `RawConfig`'s serde
/// defaults are the defaults layer, so the result is figment's, without
/// figment's tree beside it (with 10,000 checks, that tree was most of
/// the daemon's peak memory: 29 MiB where the daemon then needs 16). None
/// when that does not apply or the text does not read as a
/// configuration: then figment reads it, for its errors.
fn extract_one_file(files: &[PathBuf]) -> Option<RawConfig> {
    let [main] = files else { return None };
    let env = std::env::vars_os().any(|(name, _)| {
        name.to_str()
            .is_some_and(|name| name.starts_with(ENV_PREFIX))
    });
    if env {
        return None;
    }
    let text = std::fs::read_to_string(main).ok()?;
    // One check at a time (`sections`), else the whole text at once;
    // either way through the format figment reads with, so that its
    // nesting bound holds on this path too.
    super::sections::read(&text).or_else(|| <Toml as Format>::from_str(&text).ok())
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
