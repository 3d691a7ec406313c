//! The layers of the configuration, merged with figment in their documented
//! order: built-in defaults, the main file, `NAME.d/*.toml` fragments in
//! lexical order, then `PICOMON_*` environment variables.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;

use super::error::{ConfigError, ENV_PREFIX};
use super::raw::RawConfig;

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
    let mut problems = Vec::new();
    if !config_file(main, &mut problems) {
        return Err(ConfigError { problems });
    }
    let mut files = vec![main.to_path_buf()];
    files.extend(fragments(&fragment_dir(main), &mut problems));
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }

    let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
    for file in &files {
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
