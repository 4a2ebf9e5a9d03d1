//! Escaping for GitHub-flavoured markdown: every user-controlled string (names, values,
//! paths, messages) goes through one of these before it reaches a PR comment, so that it
//! renders as the text it is and never as markup, HTML, a table cell break, or a
//! `@mention` / `#123` reference that notifies someone.

/// Zero-width space: after `@` or `#` it stops GitHub from linking a mention or an issue
/// reference, and shows nothing. Written as an entity so the markdown source says so.
const ZWSP: &str = "&#8203;";

/// `s` on one line: line breaks become spaces and other control characters U+FFFD, so a
/// value can never end a table row or a paragraph.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// At most `max` characters of `s`, and how many were cut.
pub fn clip(s: &str, max: usize) -> (String, usize) {
    let total = s.chars().count();
    if total <= max {
        return (s.to_owned(), 0);
    }
    (s.chars().take(max).collect(), total - max)
}

/// An inline code span holding exactly `s` (on one line): the fence is one backtick longer
/// than the longest run inside, and padded when `s` starts or ends with a backtick or
/// with a space that CommonMark would strip. Mentions and references are not linked in
/// code, and HTML is shown as text.
pub fn code(s: &str) -> String {
    let s = one_line(s);
    if s.is_empty() {
        return "*(empty)*".to_owned();
    }
    let fence = "`".repeat(longest_run(&s, '`') + 1);
    let all_space = s.chars().all(|c| c == ' ');
    let pad = s.starts_with('`')
        || s.ends_with('`')
        || (!all_space && s.starts_with(' ') && s.ends_with(' '));
    let pad = if pad { " " } else { "" };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// A code span for a table cell: as [`code`], with each `|` escaped as the table syntax
/// requires (GFM unescapes `\|` inside code spans of a cell). A backslash right before a
/// pipe is read differently by GFM implementations, so such a value is written as an HTML
/// `<code>` element with every punctuation character as an entity instead.
pub fn cell_code(s: &str) -> String {
    let s = one_line(s);
    if s.contains("\\|") {
        return html_code(&s);
    }
    code(&s).replace('|', "\\|")
}

/// `<code>…</code>` with every ASCII punctuation character written as a numeric entity,
/// so that no markdown, table or HTML syntax survives inside.
pub fn html_code(s: &str) -> String {
    let mut out = String::from("<code>");
    for c in one_line(s).chars() {
        if c.is_ascii_punctuation() {
            out.push_str(&format!("&#{};", c as u32));
        } else {
            out.push(c);
        }
    }
    out.push_str("</code>");
    out
}

/// Plain text in the middle of a line: the characters that could start markup
/// backslash-escaped (emphasis, code, links, HTML, entities, tables, strikethrough, math),
/// and `@` and `#` followed by a zero-width space so GitHub links no mention or
/// reference (nor a bare URL: `://` and `www.` are broken the same way). Line-start syntax cannot arise: the text is put on one line after other
/// text.
pub fn text(s: &str) -> String {
    let chars: Vec<char> = one_line(s).chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        // GFM links bare URLs (`http://`, `www.`): a zero-width space breaks the pattern.
        let www = c == '.'
            && i >= 3
            && chars[i - 3..i]
                .iter()
                .collect::<String>()
                .eq_ignore_ascii_case("www");
        if www {
            out.push_str(ZWSP);
        }
        match c {
            ':' if chars[i + 1..].starts_with(&['/', '/']) => {
                out.push(c);
                out.push_str(ZWSP);
            }
            '@' | '#' => {
                out.push(c);
                out.push_str(ZWSP);
            }
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '!' | '&' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Text inside raw HTML (a `<summary>`): HTML-escaped, on one line. Inside `<code>` no
/// mention is linked; elsewhere use [`html_text`].
pub fn html(s: &str) -> String {
    html_with(s, false)
}

/// HTML text outside `<code>`: as [`html`], with mentions and references broken.
pub fn html_text(s: &str) -> String {
    html_with(s, true)
}

fn html_with(s: &str, break_refs: bool) -> String {
    let mut out = String::new();
    for c in one_line(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '@' | '#' if break_refs => {
                out.push(c);
                out.push_str(ZWSP);
            }
            c => out.push(c),
        }
    }
    out
}

/// A fenced code block with `info` (`diff`, `json`) whose fence is longer than any run of
/// backticks in `body`, so nothing inside can close it.
pub fn fence(info: &str, body: &str) -> String {
    let fence = "`".repeat((longest_run(body, '`') + 1).max(3));
    let mut out = format!("{fence}{info}\n");
    for line in body.lines() {
        out.push_str(&line.replace('\r', ""));
        out.push('\n');
    }
    out.push_str(&fence);
    out.push('\n');
    out
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for x in s.chars() {
        run = if x == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_hold_backticks_and_spaces() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x`"), "`` `x` ``");
        assert_eq!(code(" x "), "`  x  `");
        assert_eq!(code("a\nb"), "`a b`");
    }

    #[test]
    fn cells_escape_pipes_and_fall_back_to_entities_after_a_backslash() {
        assert_eq!(cell_code("a|b"), "`a\\|b`");
        assert_eq!(cell_code("a\\|b"), "<code>a&#92;&#124;b</code>");
    }

    #[test]
    fn text_breaks_mentions_and_markup() {
        assert_eq!(text("@team <b> a_b"), "@&#8203;team \\<b\\> a\\_b");
        assert_eq!(html_text("@x & #1"), "@&#8203;x &amp; #&#8203;1");
    }

    #[test]
    fn fences_outgrow_the_body() {
        assert!(fence("diff", "```\nx").starts_with("````diff\n"));
    }
}
