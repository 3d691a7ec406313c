//! Fixtures (site TOML above all) written in the test as indented raw
//! strings, one line of the file a line of the source: shared by the
//! integration harness and the library's unit tests (by `#[path]`), so
//! that every fixture reads the same way.

/// The text of a raw string written indented with the code around it:
/// `dedent(r#"`, a line break, the lines, then `"#` on a line of its own.
/// The line break after the opening quote goes, the first line's
/// indentation goes from every line that has it, and so do the spaces
/// before the closing quote: what is left is the text as the file holds
/// it. A line with less indentation (one a `format!` argument brought) is
/// kept as it is. Text that does not open with a line break is returned
/// unchanged.
pub fn dedent(text: &str) -> String {
    let Some(body) = text.strip_prefix('\n') else {
        return text.to_string();
    };
    let first = body.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let indent = &first[..first.len() - first.trim_start().len()];
    // The closing quote's indentation, after the last line break.
    let end = body.rfind('\n').map_or(0, |at| at + 1);
    let body = match body[end..].trim_start_matches(' ') {
        "" => &body[..end],
        _ => body,
    };
    body.split_inclusive('\n')
        .map(|line| line.strip_prefix(indent).unwrap_or(line))
        .collect()
}
