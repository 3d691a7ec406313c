//! `picomon generate DIR`: the man pages of both binaries (clap_mangen) and
//! their bash, zsh and fish completions (clap_complete), from the clap
//! definitions in `cli.rs`. The results are checked in under `man/` and
//! `completions/`; a test regenerates them and fails when they differ.

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, WatchdogCli};

/// Every generated file: its path under DIR and its content.
pub(crate) fn files() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for mut cmd in [Cli::command(), WatchdogCli::command()] {
        let name = cmd.get_name().to_string();
        let page =
            man_page(&cmd).with_context(|| format!("cannot render the man page of {name}"))?;
        out.push((format!("man/{name}.1"), page));
        // The pages the SUBCOMMANDS section refers to.
        for sub in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
            let sub_name = format!("{name}-{}", sub.get_name());
            let sub = sub
                .clone()
                .name(sub_name.clone())
                .version(cmd.get_version().unwrap_or_default().to_string());
            let page = man_page(&sub)
                .with_context(|| format!("cannot render the man page of {sub_name}"))?;
            out.push((format!("man/{sub_name}.1"), page));
        }
        for (shell, file) in [
            (Shell::Bash, format!("{name}.bash")),
            (Shell::Zsh, format!("_{name}")),
            (Shell::Fish, format!("{name}.fish")),
        ] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, name.clone(), &mut script);
            out.push((format!("completions/{file}"), script));
        }
    }
    Ok(out)
}

/// clap_mangen's sections, with the long help's closing text turned into
/// sections of their own: each `Title:` line starts one.
fn man_page(cmd: &clap::Command) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    if cmd.get_subcommands().any(|c| !c.is_hide_set()) {
        man.render_subcommands_section(&mut page)?;
    }
    if let Some(text) = cmd.get_after_long_help() {
        page.extend_from_slice(roff_sections(&text.to_string()).as_bytes());
    }
    page.extend_from_slice(
        b".SH \"SEE ALSO\"\npicomon(1), picomon\\-watchdog(1), picomon.toml(5)\n",
    );
    man.render_version_section(&mut page)?;
    Ok(page)
}

/// `Title:` lines become `.SH TITLE`; indented lines keep their layout.
fn roff_sections(text: &str) -> String {
    let mut out = String::new();
    let mut literal = false;
    for line in text.lines() {
        let escaped = line.replace('\\', "\\e").replace('-', "\\-");
        let escaped = match escaped.starts_with(['.', '\'']) {
            true => format!("\\&{escaped}"),
            false => escaped,
        };
        if let Some(title) = line.strip_suffix(':').filter(|t| !t.starts_with(' ')) {
            if literal {
                out.push_str(".fi\n");
                literal = false;
            }
            out.push_str(&format!(".SH \"{}\"\n", title.to_uppercase()));
        } else if line.starts_with("  ") {
            if !literal {
                out.push_str(".nf\n");
                literal = true;
            }
            out.push_str(&escaped);
            out.push('\n');
        } else {
            if literal {
                out.push_str(".fi\n");
                literal = false;
            }
            if line.is_empty() {
                out.push_str(".PP\n");
            } else {
                out.push_str(&escaped);
                out.push('\n');
            }
        }
    }
    if literal {
        out.push_str(".fi\n");
    }
    out
}

pub(crate) fn write_all(dir: &Path) -> anyhow::Result<()> {
    for (path, content) in files()? {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, content)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regenerate with `cargo run -- generate .` when this fails.
    #[test]
    fn checked_in_man_pages_and_completions_are_current() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut stale = Vec::new();
        for (path, content) in files().expect("generate") {
            let current = std::fs::read(root.join(&path)).unwrap_or_default();
            if current != content {
                stale.push(path);
            }
        }
        assert!(
            stale.is_empty(),
            "stale generated files {stale:?}: run `cargo run -- generate .` and commit"
        );
    }
}
