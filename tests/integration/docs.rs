//! The docs against what they describe. The man pages as `picomon
//! generate` writes them for packaging, read back: every option a page
//! documents is one the command it documents takes (`picomon check-config
//! -V` was documented, and refused). The README's summary of the
//! commands shows every option each takes, and only those; its list of
//! what `scripts/deps` installs names every package it installs.

use std::collections::BTreeSet;

use clap::CommandFactory;

use crate::harness::Site;

/// Where a page mentions an option: in bold (`\fB\-\-dump\fR`: a synopsis
/// or an OPTIONS entry, so the option of the command the section is
/// about), or in running text (`\-\-hang\-timeout`: of some command of
/// either binary; the watchdog's page tells of picomon's
/// `\-\-heartbeat\-fd`).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Mention {
    /// What users type before it, e.g. `picomon silence add`.
    command: String,
    /// `--for` or `-c`.
    option: String,
    bold: bool,
}

/// The options `page` (roff) mentions, each with the command it is
/// documented for: the SYNOPSIS names the page's command, and a `.SS`
/// subsection (`picomon silence add`) the subcommand it documents.
fn mentions(page: &str) -> Vec<Mention> {
    let mut out = Vec::new();
    let mut command = String::new();
    let mut in_synopsis = false;
    for line in page.lines() {
        if line.starts_with(".SH ") {
            in_synopsis = line == ".SH SYNOPSIS";
            continue;
        }
        if let Some(title) = line.strip_prefix(".SS ") {
            command = title.trim_matches('"').to_string();
            continue;
        }
        let text = line.replace("\\-", "-");
        if in_synopsis && command.is_empty() {
            // `\fBpicomon check-config\fR [...]`
            if let Some(name) = text
                .strip_prefix("\\fB")
                .and_then(|rest| rest.split("\\fR").next())
            {
                command = name.to_string();
            }
        }
        out.extend(options_in(&text).map(|(option, bold)| Mention {
            command: command.clone(),
            option,
            bold,
        }));
    }
    out
}

/// `-x` and `--name` in a line of text (roff escapes undone), and whether
/// each is in bold.
fn options_in(text: &str) -> impl Iterator<Item = (String, bool)> + '_ {
    text.match_indices('-').filter_map(move |(at, _)| {
        let bold = text[..at].ends_with("\\fB");
        let before = text[..at].chars().next_back();
        // The first dash of an option: in bold, or after a space, a
        // bracket or a quote, not within a word (`command-line`).
        if !bold && before.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_') {
            return None;
        }
        let rest = &text[at + 1..];
        let (long, rest) = match rest.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let name = name.trim_end_matches('-');
        match (long, name.len()) {
            (true, n) if n >= 2 => Some((format!("--{name}"), bold)),
            // A short option is one character, and only trusted in bold:
            // running text has "-1)" and "(-h)" but also ranges.
            (false, 1) if bold => Some((format!("-{name}"), bold)),
            _ => None,
        }
    })
}

/// The command users reach by typing `typed`, built (with its help and
/// version flags), or `None`.
fn command_for(typed: &str) -> Option<clap::Command> {
    let mut words = typed.split_whitespace();
    let mut cmd = match words.next()? {
        "picomon" => picomon::cli::Cli::command(),
        "picomon-watchdog" => picomon::cli::WatchdogCli::command(),
        _ => return None,
    };
    cmd.build();
    for word in words {
        cmd = cmd.find_subcommand(word)?.clone();
    }
    Some(cmd)
}

fn takes(cmd: &clap::Command, option: &str) -> bool {
    cmd.get_arguments()
        .any(|arg| match option.strip_prefix("--") {
            Some(long) => {
                arg.get_long() == Some(long)
                    || arg
                        .get_all_aliases()
                        .into_iter()
                        .flatten()
                        .any(|a| a == long)
            }
            None => option
                .strip_prefix('-')
                .and_then(|s| s.chars().next())
                .is_some_and(|short| arg.get_short() == Some(short)),
        })
}

/// `cmd` or any command under it takes `option`, hidden ones included.
fn anywhere_takes(cmd: &clap::Command, option: &str) -> bool {
    takes(cmd, option) || cmd.get_subcommands().any(|sub| anywhere_takes(sub, option))
}

/// The documented options that `typed`'s command does not take.
fn unknown(mentions: &[Mention]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for m in mentions {
        let Some(cmd) = command_for(&m.command) else {
            out.insert(format!("{:?} is no command (for {})", m.command, m.option));
            continue;
        };
        let known = match m.bold {
            true => takes(&cmd, &m.option),
            false => ["picomon", "picomon-watchdog"]
                .into_iter()
                .filter_map(command_for)
                .any(|root| anywhere_takes(&root, &m.option)),
        };
        if !known {
            out.insert(format!("{}: {}", m.command, m.option));
        }
    }
    out
}

#[test]
fn every_option_a_man_page_documents_is_one_its_command_takes() {
    let site = Site::new("");
    let out = site
        .picomon()
        .arg("generate")
        .arg(site.dir.path())
        .output()
        .expect("run picomon generate");
    assert!(out.status.success(), "{out:?}");
    let mut pages = 0;
    for entry in std::fs::read_dir(site.path("man")).expect("man/") {
        let path = entry.expect("man page").path();
        let page = std::fs::read_to_string(&path).expect("read the page");
        let found = mentions(&page);
        // Every page documents options, in bold: a parser that finds
        // none would pass anything.
        assert!(
            found.iter().any(|m| m.bold && m.option == "--help"),
            "{}: no option found: {found:?}",
            path.display()
        );
        let unknown = unknown(&found);
        assert!(
            unknown.is_empty(),
            "{} documents options that are refused: {unknown:?}",
            path.display()
        );
        pages += 1;
    }
    assert_eq!(pages, 8, "one page per binary and per visible subcommand");
}

/// The reader itself, on the page that documented `-V` for `picomon
/// check-config`: it must catch that.
#[test]
fn the_man_page_reader_catches_an_option_the_command_refuses() {
    let page = "\
.SH SYNOPSIS
\\fBpicomon check\\-config\\fR [\\fB\\-\\-dump\\fR] [\\fB\\-V\\fR|\\fB\\-\\-version\\fR]
.SH OPTIONS
.TP
\\fB\\-\\-dump\\fR
Print the merged configuration, unlike \\-\\-no\\-such\\-thing
.SH SUBCOMMANDS
.SS \"picomon silence add\"
\\fBpicomon silence add\\fR <\\fB\\-\\-for\\fR> [\\fB\\-\\-json\\fR]
";
    let found = mentions(page);
    assert!(found.contains(&Mention {
        command: "picomon check-config".into(),
        option: "--dump".into(),
        bold: true,
    }));
    assert_eq!(
        unknown(&found).into_iter().collect::<Vec<_>>(),
        [
            "picomon check-config: --no-such-thing",
            "picomon check-config: --version",
            "picomon check-config: -V",
            "picomon silence add: --json",
        ]
    );
}

/// The packages `scripts/deps` installs: the words of its `for pkg in`
/// lists and of its `have PKG ||` lines.
fn deps_packages(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_list = false;
    for line in script.lines().map(str::trim) {
        let words = match line.strip_prefix("for pkg in ") {
            Some(rest) => rest,
            None if in_list => line,
            None => {
                // `have "$pkg" ||` in the loops is not a package.
                if let Some(rest) = line.strip_prefix("have ") {
                    out.extend(
                        rest.split_whitespace()
                            .next()
                            .filter(|w| !w.contains('$'))
                            .map(str::to_string),
                    );
                }
                continue;
            }
        };
        let (words, end) = match words.split_once(';') {
            Some((words, _)) => (words, true),
            None => (words.trim_end_matches('\\'), false),
        };
        out.extend(words.split_whitespace().map(str::to_string));
        in_list = !end;
    }
    out
}

#[test]
fn the_readme_names_every_package_scripts_deps_installs() {
    let root = env!("CARGO_MANIFEST_DIR");
    let script = std::fs::read_to_string(format!("{root}/scripts/deps")).expect("scripts/deps");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let packages = deps_packages(&script);
    for pkg in [
        "monitoring-plugins-basic",
        "curl",
        "prometheus-alertmanager",
    ] {
        assert!(
            packages.iter().any(|p| p == pkg),
            "{pkg} not read: {packages:?}"
        );
    }
    let missing: Vec<_> = packages
        .iter()
        .filter(|pkg| !readme.contains(&format!("`{pkg}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "the README's list of what scripts/deps installs lacks {missing:?}"
    );
}

/// The README's summary of the commands (the block under "Running it"):
/// each line's command and the options its synopsis shows.
fn readme_synopses(readme: &str) -> Vec<(String, Vec<String>)> {
    let block = readme
        .split("## Running it")
        .nth(1)
        .and_then(|rest| rest.split("```").nth(1))
        .unwrap_or_default();
    block
        .lines()
        .filter(|line| line.starts_with("picomon"))
        .map(|line| {
            // The synopsis ends where the description's column starts.
            let synopsis = line.split("  ").next().unwrap_or_default();
            let mut words = synopsis.split_whitespace().peekable();
            let mut command = Vec::new();
            while let Some(word) =
                words.next_if(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
            {
                command.push(word);
            }
            let options = words
                .map(|w| w.trim_matches(['[', ']']))
                .filter(|w| w.starts_with('-') && *w != "--" && !w.starts_with("-- "))
                .map(str::to_string)
                .collect();
            (command.join(" "), options)
        })
        .collect()
}

/// Every command users may type, as typed, with the options it takes,
/// each by its names (`--config`, `-c`); hidden ones, clap's help and
/// version, and positionals left out.
fn typed_commands(cmd: &clap::Command, typed: &str, out: &mut Vec<(String, Vec<Vec<String>>)>) {
    let options = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_positional())
        .filter(|a| !["help", "version"].contains(&a.get_id().as_str()))
        .map(|a| {
            a.get_long()
                .map(|l| format!("--{l}"))
                .into_iter()
                .chain(a.get_short().map(|s| format!("-{s}")))
                .collect()
        })
        .collect();
    out.push((typed.to_string(), options));
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        typed_commands(sub, &format!("{typed} {}", sub.get_name()), out);
    }
}

#[test]
fn the_readmes_summary_of_the_commands_shows_every_option_and_only_real_ones() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let synopses = readme_synopses(&readme);
    assert!(
        synopses
            .iter()
            .any(|(c, o)| c == "picomon silence add" && o.contains(&"--for".to_string())),
        "{synopses:?}"
    );
    for (command, options) in &synopses {
        let cmd = command_for(command).unwrap_or_else(|| panic!("{command:?} is no command"));
        for option in options {
            assert!(
                takes(&cmd, option),
                "README: `{command}` does not take {option}"
            );
        }
    }
    let mut all = Vec::new();
    for root in ["picomon", "picomon-watchdog"] {
        let cmd = command_for(root).expect("a binary");
        typed_commands(&cmd, root, &mut all);
    }
    for (command, options) in all {
        if options.is_empty() {
            continue; // `picomon silence`: only its subcommands are typed.
        }
        let Some((_, shown)) = synopses.iter().find(|(c, _)| *c == command) else {
            panic!("the README's summary has no line for `{command}`");
        };
        for names in options {
            assert!(
                names.iter().any(|n| shown.contains(n)),
                "the README's `{command}` line does not show {names:?}: {shown:?}"
            );
        }
    }
}
