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
    let roots = [Cli::command(), WatchdogCli::command()];
    let pages: Vec<Page> = roots.iter().flat_map(pages).collect();
    let mut out = Vec::new();
    for page in &pages {
        let text = man_page(page, &pages)
            .with_context(|| format!("cannot render the man page of {}", page.name))?;
        out.push((format!("man/{}.1", page.name), text));
    }
    for root in &roots {
        let name = root.get_name().to_string();
        let mut cmd = without_hidden(root);
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

/// One man page: a binary, or one of its subcommands as `picomon-status`
/// for `picomon status`; a subcommand's own subcommands (`picomon silence
/// add`) are documented on its page, not on pages of their own.
struct Page {
    /// The page's name, e.g. `picomon-check-config`.
    name: String,
    /// What users type, e.g. `picomon check-config`.
    typed: String,
    cmd: clap::Command,
}

/// The pages of the binary `root`: its own, and one per subcommand users
/// may type.
fn pages(root: &clap::Command) -> Vec<Page> {
    let name = root.get_name().to_string();
    let version = root.get_version().unwrap_or_default().to_string();
    let mut out = vec![Page {
        name: name.clone(),
        typed: name.clone(),
        cmd: root.clone(),
    }];
    for sub in visible_subcommands(root) {
        let typed = format!("{name} {}", sub.get_name());
        out.push(Page {
            name: format!("{name}-{}", sub.get_name()),
            typed,
            // The version is the page's, not an option: `picomon
            // check-config -V` is refused, so no `-V` is documented.
            cmd: sub
                .clone()
                .version(version.clone())
                .disable_version_flag(true),
        });
    }
    out
}

/// The subcommands users may type: not the hidden ones, and not clap's
/// `help`, which `-h` already documents.
fn visible_subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
}

/// `cmd` without its hidden arguments and subcommands, for the
/// completions: clap_complete offers hidden ones too (`--heartbeat-fd`,
/// `generate`), which are for picomon-watchdog and packaging, not users.
fn without_hidden(cmd: &clap::Command) -> clap::Command {
    let mut out = clap::Command::new(cmd.get_name().to_string())
        .disable_help_subcommand(cmd.is_disable_help_subcommand_set())
        .args(cmd.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .subcommands(
            cmd.get_subcommands()
                .filter(|c| !c.is_hide_set())
                .map(without_hidden),
        );
    // The texts too: clap words `--help`'s own help by whether there is
    // more to see.
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    if let Some(about) = cmd.get_long_about() {
        out = out.long_about(about.clone());
    }
    if let Some(after) = cmd.get_after_long_help() {
        out = out.after_long_help(after.clone());
    }
    if let Some(version) = cmd.get_version() {
        out = out.version(version.to_string());
    }
    out
}

/// clap_mangen's sections, with the long help's closing text turned into
/// sections of their own (each `Title:` line starts one), subcommands
/// pointing at pages that exist, and SEE ALSO naming the other pages.
fn man_page(page: &Page, all: &[Page]) -> std::io::Result<Vec<u8>> {
    let cmd = page
        .cmd
        .clone()
        .name(page.name.clone())
        .bin_name(&page.typed);
    let man = clap_mangen::Man::new(cmd.clone());
    let mut text = Vec::new();
    man.render_title(&mut text)?;
    man.render_name_section(&mut text)?;
    man.render_synopsis_section(&mut text)?;
    man.render_description_section(&mut text)?;
    man.render_options_section(&mut text)?;
    if visible_subcommands(&page.cmd).next().is_some() {
        match page.name == page.typed {
            // A binary: its subcommands have pages, which clap_mangen
            // names.
            true => man.render_subcommands_section(&mut text)?,
            false => text.extend_from_slice(&subcommands_here(page)?),
        }
    }
    if let Some(after) = cmd.get_after_long_help() {
        text.extend_from_slice(roff_sections(&after.to_string()).as_bytes());
    }
    let see_also: Vec<String> = all
        .iter()
        .filter(|p| p.name != page.name)
        .map(|p| format!("{}(1)", p.name.replace('-', "\\-")))
        .chain(["picomon.toml(5)".to_string()])
        .collect();
    text.extend_from_slice(format!(".SH \"SEE ALSO\"\n{}\n", see_also.join(", ")).as_bytes());
    man.render_version_section(&mut text)?;
    Ok(text)
}

/// The SUBCOMMANDS section of a subcommand's page: each of its own
/// subcommands with its synopsis, description and options (clap_mangen's
/// rendering, under a heading of its own instead of sections).
fn subcommands_here(page: &Page) -> std::io::Result<Vec<u8>> {
    let mut out = b".SH SUBCOMMANDS\n".to_vec();
    for sub in visible_subcommands(&page.cmd) {
        let typed = format!("{} {}", page.typed, sub.get_name());
        let man = clap_mangen::Man::new(sub.clone().bin_name(&typed));
        let mut parts = Vec::new();
        man.render_synopsis_section(&mut parts)?;
        man.render_description_section(&mut parts)?;
        man.render_options_section(&mut parts)?;
        out.extend_from_slice(format!(".SS \"{typed}\"\n").as_bytes());
        let parts = String::from_utf8_lossy(&parts).into_owned();
        let mut first = true;
        for line in parts.lines() {
            match line.starts_with(".SH ") {
                // The synopsis opens the subsection; the description and
                // the options follow as paragraphs.
                true if first => first = false,
                true => out.extend_from_slice(b".PP\n"),
                false => {
                    out.extend_from_slice(line.as_bytes());
                    out.push(b'\n');
                }
            }
        }
    }
    Ok(out)
}

/// `Title:` lines that open a paragraph become `.SH TITLE` (a sentence
/// that ends a line with a colon stays text); indented lines keep their
/// layout.
fn roff_sections(text: &str) -> String {
    let mut out = String::new();
    let mut literal = false;
    let mut paragraph_start = true;
    for line in text.lines() {
        let escaped = line.replace('\\', "\\e").replace('-', "\\-");
        let escaped = match escaped.starts_with(['.', '\'']) {
            true => format!("\\&{escaped}"),
            false => escaped,
        };
        let title = line
            .strip_suffix(':')
            .filter(|t| paragraph_start && t.starts_with(|c: char| c.is_ascii_uppercase()));
        paragraph_start = line.is_empty();
        if let Some(title) = title {
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

    /// `picomon silence`'s page had "an instance whose state differs ...
    /// gets one mail:" as a section heading: a sentence ending a line
    /// with a colon is text.
    #[test]
    fn only_a_title_opening_a_paragraph_becomes_a_section() {
        let roff = roff_sections(
            "Silences:\nWhen the silence ends,\nAn instance gets one mail:\nthe Problem.\n\nExit status:\n  0   done\n",
        );
        assert_eq!(
            roff,
            ".SH \"SILENCES\"\nWhen the silence ends,\nAn instance gets one mail:\nthe Problem.\n.PP\n\
             .SH \"EXIT STATUS\"\n.nf\n  0   done\n.fi\n"
        );
    }

    /// Every argument and subcommand hidden anywhere in `cmd`, as the
    /// completions would offer them: `--long`, or a subcommand's name.
    fn hidden(cmd: &clap::Command, out: &mut Vec<String>) {
        for arg in cmd.get_arguments().filter(|a| a.is_hide_set()) {
            out.extend(arg.get_long().map(|l| format!("--{l}")));
        }
        for sub in cmd.get_subcommands() {
            match sub.is_hide_set() {
                true => out.push(sub.get_name().to_string()),
                false => hidden(sub, out),
            }
        }
    }

    #[test]
    fn the_completions_offer_nothing_hidden() {
        let mut names = Vec::new();
        for cmd in [Cli::command(), WatchdogCli::command()] {
            hidden(&cmd, &mut names);
        }
        assert!(names.contains(&"--heartbeat-fd".to_string()), "{names:?}");
        assert!(names.contains(&"generate".to_string()), "{names:?}");
        for (path, script) in files().expect("generate") {
            if !path.starts_with("completions/") {
                continue;
            }
            let script = String::from_utf8_lossy(&script);
            for name in &names {
                // An option anywhere; a subcommand as bash's `opts`
                // word, fish's `-a "NAME"`, zsh's `'NAME:description'`.
                let offered = match name.starts_with("--") {
                    true => script.contains(name.as_str()),
                    false => {
                        script.lines().any(|l| {
                            l.trim_start().starts_with("opts=")
                                && l.split(['"', ' ']).any(|w| w == name)
                        }) || script.contains(&format!("-a \"{name}\""))
                            || script.contains(&format!("'{name}:"))
                    }
                };
                assert!(!offered, "{path} offers the hidden {name}");
            }
        }
    }

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
