//! Where things are in manifest text: the line each YAML document starts on, and the line
//! and column of every key and sequence item inside a document, addressed by field path
//! (`spec.template.spec.volumes[0]`, `metadata.annotations["eks.amazonaws.com/role-arn"]`).
//!
//! Computed from the text alone, independently of the YAML library that deserializes the
//! objects, so SARIF and human locations stay exact whichever parser the snapshot uses. The
//! scanner understands what manifests are made of: block mappings and sequences (including
//! `- key: value` items and sequences at their parent key's indentation), flow mappings and
//! sequences (on one line or several), quoted keys, comments and block scalars (`|`, `>`),
//! whose contents it skips. Anything it does not understand only makes a lookup fall back
//! to the nearest enclosing field it did find, never to a wrong line.

use std::collections::BTreeMap;

/// One step of a field path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// The canonical text of a path: keys joined by `.`, indexes as `[n]`, and keys that
/// contain `.`, `[`, `]` or `"` (annotation keys) quoted as `["key"]`.
pub fn path_text(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
            Seg::Key(k) if k.is_empty() || k.contains(['.', '[', ']', '"']) => {
                out.push_str(&format!("[\"{}\"]", k.replace('"', "\\\"")));
            }
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
        }
    }
    out
}

/// `parent` followed by the key `key`, quoted when needed (for annotation and data keys).
pub fn child(parent: &str, key: &str) -> String {
    let mut segs = parse_path(parent);
    segs.push(Seg::Key(key.to_owned()));
    path_text(&segs)
}

/// Parses the canonical path text back into segments (inverse of [`path_text`]).
pub fn parse_path(text: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut key = String::new();
    let flush = |key: &mut String, segs: &mut Vec<Seg>| {
        if !key.is_empty() {
            segs.push(Seg::Key(std::mem::take(key)));
        }
    };
    while i < chars.len() {
        match chars[i] {
            '.' => flush(&mut key, &mut segs),
            '[' if chars.get(i + 1) == Some(&'"') => {
                flush(&mut key, &mut segs);
                i += 2;
                let mut quoted = String::new();
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    quoted.push(chars[i]);
                    i += 1;
                }
                segs.push(Seg::Key(quoted));
                i += 1; // the closing quote; the `]` is skipped below
            }
            '[' => {
                flush(&mut key, &mut segs);
                let end = chars[i..].iter().position(|c| *c == ']').map(|p| p + i);
                let digits: String = chars[i + 1..end.unwrap_or(chars.len())].iter().collect();
                match digits.parse() {
                    Ok(n) => segs.push(Seg::Index(n)),
                    Err(_) => segs.push(Seg::Key(digits)),
                }
                i = end.unwrap_or(chars.len());
            }
            ']' => {}
            c => key.push(c),
        }
        i += 1;
    }
    flush(&mut key, &mut segs);
    segs
}

/// Splits a multi-document YAML text at `---` lines, returning each non-empty document
/// with the 1-based line its first content line is on (leading blank and comment lines do
/// not count: the cited line is the object's first real line).
pub fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    let mut has_content = false;
    for (idx, line) in text.lines().enumerate() {
        let is_separator = line.trim_end() == "---" || line.starts_with("--- ");
        if is_separator {
            if has_content {
                docs.push((start, std::mem::take(&mut current)));
            }
            current.clear();
            has_content = false;
            start = idx + 2;
            continue;
        }
        if !has_content {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                start = idx + 2;
                continue;
            }
            has_content = true;
        }
        current.push_str(line);
        current.push('\n');
    }
    if has_content {
        docs.push((start, current));
    }
    docs
}

/// Line and column (both 1-based, columns in characters) of every key and sequence item of
/// one document, by canonical path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldIndex {
    at: BTreeMap<Vec<Seg>, (usize, usize)>,
}

#[derive(Debug)]
struct Frame {
    indent: usize,
    path: Vec<Seg>,
    /// `Some(next index)` for a block sequence, `None` for a block mapping.
    seq: Option<usize>,
}

impl FieldIndex {
    /// Indexes one document whose first line is line `first_line` of its file.
    pub fn of_document(doc: &str, first_line: usize) -> Self {
        let mut index = FieldIndex::default();
        let lines: Vec<&str> = doc.lines().collect();
        let mut stack: Vec<Frame> = vec![Frame {
            indent: 0,
            path: Vec::new(),
            seq: None,
        }];
        // The key whose value starts on a later line: (its path, its indentation).
        let mut pending: Option<(Vec<Seg>, usize)> = None;
        let mut i = 0;
        while i < lines.len() {
            let raw = lines[i];
            let line_no = first_line + i;
            let content = strip_comment(raw);
            if content.trim().is_empty() {
                i += 1;
                continue;
            }
            let indent = raw.len() - raw.trim_start_matches(' ').len();
            let mut col = indent;
            let mut rest = content[indent..].trim_end();
            // Close the containers this line is not inside of. A key at indentation n ends
            // a sequence at n (`key:\n- a\nother:`); a dash at n continues it.
            let is_dash = rest == "-" || rest.starts_with("- ");
            while stack.len() > 1 {
                let top = stack.last().expect("stack has a root");
                let ends =
                    top.indent > indent || (top.indent == indent && top.seq.is_some() && !is_dash);
                if !ends {
                    break;
                }
                stack.pop();
            }
            // Open the container of a key whose value starts here.
            if let Some((path, key_indent)) = pending.take() {
                if is_dash && indent >= key_indent {
                    stack.push(Frame {
                        indent,
                        path,
                        seq: Some(0),
                    });
                } else if indent > key_indent {
                    stack.push(Frame {
                        indent,
                        path,
                        seq: None,
                    });
                }
            }
            // Sequence items, possibly nested on one line (`- - a`) or holding a mapping
            // whose first key is on the dash line (`- name: x`).
            while rest == "-" || rest.starts_with("- ") {
                let item_path = match stack.last_mut() {
                    Some(top) if top.indent == col && top.seq.is_some() => {
                        let n = top.seq.unwrap_or(0);
                        top.seq = Some(n + 1);
                        let mut p = top.path.clone();
                        p.push(Seg::Index(n));
                        p
                    }
                    _ => break,
                };
                index.record(&item_path, line_no, col + 1);
                let dash_col = col;
                let after = rest[1..].trim_start();
                col += rest.len() - after.len();
                rest = after;
                if rest.is_empty() {
                    // The item's value starts on a later line, deeper than the dash.
                    pending = Some((item_path, dash_col + 1));
                    break;
                }
                if rest == "-" || rest.starts_with("- ") {
                    stack.push(Frame {
                        indent: col,
                        path: item_path,
                        seq: Some(0),
                    });
                } else if split_key(rest).is_some() {
                    stack.push(Frame {
                        indent: col,
                        path: item_path,
                        seq: None,
                    });
                } else if rest.starts_with(['{', '[']) {
                    i = index.flow(&lines, i, col, &item_path, first_line);
                    rest = "";
                } else {
                    rest = "";
                }
            }
            if let Some((key, value_at)) = split_key(rest) {
                let mut path = match stack.last() {
                    Some(top) if top.seq.is_none() => top.path.clone(),
                    _ => Vec::new(),
                };
                path.push(Seg::Key(key));
                index.record(&path, line_no, col + 1);
                let value = rest[value_at..].trim();
                let value_col =
                    col + value_at + (rest[value_at..].len() - rest[value_at..].trim_start().len());
                if value.is_empty() {
                    pending = Some((path, col));
                } else if value.starts_with('|') || value.starts_with('>') {
                    // A block scalar: its lines are text, not structure.
                    let mut j = i + 1;
                    while j < lines.len() {
                        let l = lines[j];
                        let ind = l.len() - l.trim_start_matches(' ').len();
                        if !l.trim().is_empty() && ind <= col {
                            break;
                        }
                        j += 1;
                    }
                    i = j - 1;
                } else if value.starts_with(['{', '[']) {
                    i = index.flow(&lines, i, value_col, &path, first_line);
                }
            }
            i += 1;
        }
        index
    }

    fn record(&mut self, path: &[Seg], line: usize, col: usize) {
        self.at.entry(path.to_vec()).or_insert((line, col));
    }

    /// Indexes a flow collection starting at byte column `col` of `lines[start]`, which
    /// may run over several lines; returns the index of the line it ends on.
    fn flow(
        &mut self,
        lines: &[&str],
        start: usize,
        col: usize,
        path: &[Seg],
        first_line: usize,
    ) -> usize {
        // (char, line index, 1-based char column) of the flow text.
        let mut chars: Vec<(char, usize, usize)> = Vec::new();
        let mut depth = 0i32;
        let mut end = start;
        'lines: for (li, line) in lines.iter().enumerate().skip(start) {
            let from = if li == start { col } else { 0 };
            let prefix_chars = line[..from.min(line.len())].chars().count();
            let mut quote: Option<char> = None;
            for (ci, c) in line[from.min(line.len())..].chars().enumerate() {
                match (quote, c) {
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), _) => {}
                    (None, '"' | '\'') => quote = Some(c),
                    (None, '#') if chars.last().is_none_or(|l| l.0 == ' ') => break,
                    (None, '{' | '[') => depth += 1,
                    (None, '}' | ']') => depth -= 1,
                    _ => {}
                }
                chars.push((c, li, prefix_chars + ci + 1));
                if depth == 0 {
                    end = li;
                    break 'lines;
                }
            }
            chars.push((' ', li, 0));
            end = li;
        }
        let mut pos = 0;
        self.flow_node(&chars, &mut pos, path, first_line);
        end
    }

    fn flow_node(
        &mut self,
        c: &[(char, usize, usize)],
        pos: &mut usize,
        path: &[Seg],
        first_line: usize,
    ) {
        skip_ws(c, pos);
        let Some(&(open, _, _)) = c.get(*pos) else {
            return;
        };
        if open != '{' && open != '[' {
            skip_scalar(c, pos);
            return;
        }
        let close = if open == '{' { '}' } else { ']' };
        *pos += 1;
        let mut n = 0;
        loop {
            skip_ws(c, pos);
            let Some(&(ch, line, col)) = c.get(*pos) else {
                return;
            };
            if ch == close {
                *pos += 1;
                return;
            }
            if ch == ',' {
                *pos += 1;
                continue;
            }
            let mut item = path.to_vec();
            if open == '{' {
                let key = read_flow_key(c, pos);
                item.push(Seg::Key(key));
                self.record(&item, first_line + line, col);
                skip_ws(c, pos);
                if c.get(*pos).is_some_and(|x| x.0 == ':') {
                    *pos += 1;
                    self.flow_node(c, pos, &item, first_line);
                }
            } else {
                item.push(Seg::Index(n));
                n += 1;
                self.record(&item, first_line + line, col);
                self.flow_node(c, pos, &item, first_line);
            }
        }
    }

    /// Line and column of the field at `path`, or of its nearest enclosing field found.
    pub fn locate(&self, path: &str) -> Option<(usize, usize)> {
        let mut segs = parse_path(path);
        while !segs.is_empty() {
            if let Some(at) = self.at.get(&segs) {
                return Some(*at);
            }
            segs.pop();
        }
        None
    }

    /// Line and column of the field at exactly `path`.
    pub fn exact(&self, path: &str) -> Option<(usize, usize)> {
        self.at(&parse_path(path))
    }

    /// Line and column of the field at exactly these segments.
    pub fn at(&self, segs: &[Seg]) -> Option<(usize, usize)> {
        self.at.get(segs).copied()
    }

    /// The index of the subtree at `prefix` (an item of a `kind: List`), re-rooted so its
    /// paths start below `prefix`.
    pub fn sub(&self, prefix: &[Seg]) -> FieldIndex {
        let at = self
            .at
            .iter()
            .filter(|(k, _)| k.len() > prefix.len() && k.starts_with(prefix))
            .map(|(k, v)| (k[prefix.len()..].to_vec(), *v))
            .collect();
        FieldIndex { at }
    }

    /// The column the document's (or subtree's) first field starts at; 1 when empty.
    pub fn document_column(&self) -> usize {
        self.at.values().min().map_or(1, |p| p.1)
    }
}

fn skip_ws(c: &[(char, usize, usize)], pos: &mut usize) {
    while c.get(*pos).is_some_and(|x| x.0.is_whitespace()) {
        *pos += 1;
    }
}

/// Skips a scalar in flow context (up to `,` or a closing bracket at this depth).
fn skip_scalar(c: &[(char, usize, usize)], pos: &mut usize) {
    let mut quote: Option<char> = None;
    while let Some(&(ch, _, _)) = c.get(*pos) {
        match (quote, ch) {
            (Some(q), ch) if ch == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(ch),
            (None, ',' | '}' | ']') => return,
            _ => {}
        }
        *pos += 1;
    }
}

fn read_flow_key(c: &[(char, usize, usize)], pos: &mut usize) -> String {
    let mut key = String::new();
    if let Some(&(q @ ('"' | '\''), _, _)) = c.get(*pos) {
        *pos += 1;
        while let Some(&(ch, _, _)) = c.get(*pos) {
            *pos += 1;
            if ch == q {
                break;
            }
            key.push(ch);
        }
        return key;
    }
    while let Some(&(ch, _, _)) = c.get(*pos) {
        let next_is_space = c.get(*pos + 1).is_none_or(|n| n.0.is_whitespace());
        if (ch == ':' && next_is_space) || ch == ',' || ch == '}' {
            break;
        }
        key.push(ch);
        *pos += 1;
    }
    key.trim().to_owned()
}

/// The line without its comment (a `#` outside quotes, at the start or after a space).
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') if prev == ' ' || prev == '-' || prev == ':' => quote = Some(c),
            (None, '#') if prev == ' ' || i == 0 => return &line[..i],
            _ => {}
        }
        prev = c;
    }
    line
}

/// A block mapping entry: the key and the byte offset where its value starts.
fn split_key(rest: &str) -> Option<(String, usize)> {
    let first = rest.chars().next()?;
    if matches!(first, '{' | '[' | '|' | '>' | '&' | '*' | '!') {
        return None;
    }
    if first == '"' || first == '\'' {
        let close = rest[1..].find(first)? + 1;
        let after = &rest[close + 1..];
        let colon = after.find(':')?;
        if !after[..colon].trim().is_empty() {
            return None;
        }
        let value_at = close + 1 + colon + 1;
        let ok = rest[value_at..].is_empty() || rest[value_at..].starts_with(' ');
        return ok.then(|| (rest[1..close].to_owned(), value_at));
    }
    let bytes = rest.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' ') {
            return Some((rest[..i].trim_end().to_owned(), i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # the name
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/x
    note: |
      key: not a key
      - not an item
spec:
  template:
    spec:
      containers:
      - name: app
        image: web:1.0
        env:
        - {name: A, value: \"1\"}
        - name: B
          value: x
      - name: side
      volumes:
      - name: tok
        projected:
          sources:
          - serviceAccountToken: {path: token, expirationSeconds: 7200}
      automountServiceAccountToken: true
subjects:
- kind: ServiceAccount
  name: default
-   kind: Group
    name: g
list:
- - a
  - b
flow: {a: 1, b: [x, {c: 2}],
  d: 3}
";

    fn at(index: &FieldIndex, path: &str) -> Option<(usize, usize)> {
        index.exact(path)
    }

    #[test]
    fn indexes_block_and_flow_fields_with_lines_and_columns() {
        let idx = FieldIndex::of_document(DOC, 10);
        assert_eq!(at(&idx, "kind"), Some((11, 1)));
        assert_eq!(at(&idx, "metadata.name"), Some((13, 3)));
        assert_eq!(
            at(&idx, "metadata.annotations[\"eks.amazonaws.com/role-arn\"]"),
            Some((15, 5))
        );
        assert_eq!(at(&idx, "metadata.annotations.note"), Some((16, 5)));
        assert_eq!(at(&idx, "key"), None, "block scalar text is not structure");
        assert_eq!(at(&idx, "spec.template.spec.containers[0]"), Some((23, 7)));
        assert_eq!(
            at(&idx, "spec.template.spec.containers[0].name"),
            Some((23, 9))
        );
        assert_eq!(
            at(&idx, "spec.template.spec.containers[0].image"),
            Some((24, 9))
        );
        assert_eq!(
            at(&idx, "spec.template.spec.containers[0].env[0].value"),
            Some((26, 21))
        );
        assert_eq!(
            at(&idx, "spec.template.spec.containers[0].env[1].value"),
            Some((28, 11))
        );
        assert_eq!(
            at(&idx, "spec.template.spec.containers[1].name"),
            Some((29, 9))
        );
        assert_eq!(
            at(&idx, "spec.template.spec.volumes[0].projected"),
            Some((32, 9))
        );
        assert_eq!(
            at(
                &idx,
                "spec.template.spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds"
            ),
            Some((34, 48))
        );
        assert_eq!(
            at(&idx, "spec.template.spec.automountServiceAccountToken"),
            Some((35, 7))
        );
        assert_eq!(at(&idx, "subjects[0].name"), Some((38, 3)));
        assert_eq!(at(&idx, "subjects[1]"), Some((39, 1)));
        assert_eq!(at(&idx, "subjects[1].name"), Some((40, 5)));
        assert_eq!(at(&idx, "list[0][1]"), Some((43, 3)));
        assert_eq!(at(&idx, "flow.b[1].c"), Some((44, 22)));
        assert_eq!(at(&idx, "flow.d"), Some((45, 3)));
    }

    #[test]
    fn locate_falls_back_to_the_nearest_enclosing_field() {
        let idx = FieldIndex::of_document(DOC, 1);
        assert_eq!(
            idx.locate("spec.template.spec.serviceAccountName"),
            idx.exact("spec.template.spec")
        );
        assert_eq!(idx.locate("nothing.here"), None);
    }

    #[test]
    fn paths_round_trip_through_text() {
        let p = "metadata.annotations[\"a.b/c\"].x[3]";
        assert_eq!(path_text(&parse_path(p)), p);
        assert_eq!(child("data", "key.json"), "data[\"key.json\"]");
        assert_eq!(child("spec", "x"), "spec.x");
    }

    #[test]
    fn splits_documents_with_start_lines() {
        let docs = split_documents("# c\napiVersion: v1\n---\n\n---\nkind: A\n---\n  \nkind: B\n");
        let lines: Vec<usize> = docs.iter().map(|d| d.0).collect();
        assert_eq!(lines, vec![2, 6, 9]);
    }
}
