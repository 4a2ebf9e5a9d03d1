//! Finding the byte span of a key or value in a parsed TOML document, so every
//! diagnostic can put a caret under the exact text it is about.

use std::ops::Range;

use toml_edit::{Item, Table, Value};

/// A step in a path through a TOML document: a key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

impl From<&str> for Seg {
    fn from(s: &str) -> Self {
        s.parse::<usize>()
            .map_or_else(|_| Self::Key(s.to_owned()), Self::Index)
    }
}

/// The span of the value at `path` under `table`; failing that, of the deepest key or
/// value found on the way; failing that, `fallback`.
#[cfg(test)]
pub fn value_span(table: &Table, path: &[Seg], fallback: Range<usize>) -> Range<usize> {
    walk(table, path, false).unwrap_or(fallback)
}

/// The span of the last key of `path` (for "unknown key" and "invalid key" errors).
#[cfg(test)]
pub fn key_span(table: &Table, path: &[Seg], fallback: Range<usize>) -> Range<usize> {
    walk(table, path, true).unwrap_or(fallback)
}

/// The span of the value at `path` under the entry found at `at` from `root` (a
/// cluster's `clusters.NAME`, a workload's `workload.INDEX`); failing that, of the
/// deepest key or value found under the entry; failing that, `fallback`.
pub fn entry_value_span(
    root: &Table,
    at: &[Seg],
    path: &[Seg],
    fallback: Range<usize>,
) -> Range<usize> {
    descend(Node::Table(root), at)
        .and_then(|node| walk_from(node, path, false))
        .unwrap_or(fallback)
}

/// Like [`entry_value_span`], for the last key of `path`.
pub fn entry_key_span(
    root: &Table,
    at: &[Seg],
    path: &[Seg],
    fallback: Range<usize>,
) -> Range<usize> {
    descend(Node::Table(root), at)
        .and_then(|node| walk_from(node, path, true))
        .unwrap_or(fallback)
}

/// The node at `path` under `node`, if every step exists.
fn descend<'a>(mut node: Node<'a>, path: &[Seg]) -> Option<Node<'a>> {
    for seg in path {
        node = match (node, seg) {
            (Node::Table(t), Seg::Key(k)) => Node::from_item(t.get(k)?),
            (Node::Inline(t), Seg::Key(k)) => Node::from_value(t.get(k)?),
            (Node::Array(a), Seg::Index(n)) => Node::from_value(a.get(*n)?),
            (Node::Tables(a), Seg::Index(n)) => Node::Table(a.get(*n)?),
            _ => return None,
        };
    }
    Some(node)
}

#[cfg(test)]
fn walk(table: &Table, path: &[Seg], want_key: bool) -> Option<Range<usize>> {
    walk_from(Node::Table(table), path, want_key)
}

fn walk_from(node: Node<'_>, path: &[Seg], want_key: bool) -> Option<Range<usize>> {
    let mut best = None;
    let mut node = node;
    for (i, seg) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        let (key_span, next) = match (node, seg) {
            (Node::Table(t), Seg::Key(k)) => match t.get_key_value(k) {
                Some((key, item)) => (key.span(), Node::from_item(item)),
                None => return best,
            },
            (Node::Inline(t), Seg::Key(k)) => match t.get_key_value(k) {
                Some((key, item)) => (key.span(), Node::from_item(item)),
                None => return best,
            },
            (Node::Array(a), Seg::Index(n)) => match a.get(*n) {
                Some(v) => (None, Node::from_value(v)),
                None => return best,
            },
            (Node::Tables(a), Seg::Index(n)) => match a.get(*n) {
                Some(t) => (None, Node::Table(t)),
                None => return best,
            },
            _ => return best,
        };
        if last && want_key && key_span.is_some() {
            return key_span;
        }
        best = next.span().or(key_span).or(best);
        node = next;
    }
    best
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a Table),
    Inline(&'a toml_edit::InlineTable),
    Array(&'a toml_edit::Array),
    Tables(&'a toml_edit::ArrayOfTables),
    Scalar(&'a Value),
    None,
}

impl<'a> Node<'a> {
    fn from_item(item: &'a Item) -> Self {
        match item {
            Item::Table(t) => Self::Table(t),
            Item::ArrayOfTables(a) => Self::Tables(a),
            Item::Value(v) => Self::from_value(v),
            Item::None => Self::None,
        }
    }

    fn from_value(v: &'a Value) -> Self {
        match v {
            Value::InlineTable(t) => Self::Inline(t),
            Value::Array(a) => Self::Array(a),
            other => Self::Scalar(other),
        }
    }

    fn span(self) -> Option<Range<usize>> {
        match self {
            Self::Table(t) => t.span(),
            Self::Inline(t) => t.span(),
            Self::Array(a) => a.span(),
            Self::Tables(a) => a.span(),
            Self::Scalar(v) => v.span(),
            Self::None => None,
        }
    }
}

/// Turns a dotted field path from a provider (`["inline_policies", "s3"]`) into segments.
pub fn segs<'a>(prefix: &[&'a str], rest: impl IntoIterator<Item = &'a str>) -> Vec<Seg> {
    prefix.iter().copied().chain(rest).map(Seg::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> toml_edit::Document<String> {
        toml_edit::Document::parse(text.to_owned()).expect("test TOML parses")
    }

    #[test]
    fn finds_values_keys_and_array_entries() {
        let text = "[a]\nb = \"x\"\nc = { d = [1, 2] }\n";
        let d = doc(text);
        let t = d.as_table();
        let span = value_span(t, &segs(&["a", "b"], []), 0..0);
        assert_eq!(&text[span], "\"x\"");
        let span = key_span(t, &segs(&["a", "c"], []), 0..0);
        assert_eq!(&text[span], "c");
        let span = value_span(t, &segs(&["a", "c", "d", "1"], []), 0..0);
        assert_eq!(&text[span], "2");
    }

    #[test]
    fn dotted_keys_and_missing_paths_fall_back_to_the_deepest_found() {
        let text = "aws.role = \"r\"\n";
        let d = doc(text);
        let span = value_span(d.as_table(), &segs(&["aws", "role"], []), 0..0);
        assert_eq!(&text[span], "\"r\"");
        let text = "[aws]\nrole = \"r\"\n";
        let d = doc(text);
        let span = value_span(d.as_table(), &segs(&["aws", "nope"], []), 99..100);
        assert_eq!(
            &text[span], "[aws]",
            "the deepest table found stands in for a missing key"
        );
    }
}
