//! The .deb that `scripts/package` built (scripts/test builds it before
//! the tests), shared by the integration and platform tests.

use std::path::{Path, PathBuf};

/// target/debian/picomon_VERSION-REVISION_ARCH.deb, of this version.
#[track_caller]
pub(crate) fn built_package() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debian");
    let prefix = format!("picomon_{}-", env!("CARGO_PKG_VERSION"));
    let found = std::fs::read_dir(&dir).ok().and_then(|entries| {
        entries.filter_map(Result::ok).map(|e| e.path()).find(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".deb")
        })
    });
    found.unwrap_or_else(|| {
        panic!(
            "no {prefix}*.deb in {}: run scripts/package (scripts/test does)",
            dir.display()
        )
    })
}
