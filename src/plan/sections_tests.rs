//! The section reader against `toml`: whatever it reads, `toml` reads the same way.

use serde::Deserialize;
use serde::de::IntoDeserializer;
use toml::de::{DeTable, DeValue};

use super::*;
use crate::plan::WorkloadSpec;

use crate::scale_plan;

/// What `toml` makes of `text`: the document as JSON, and each `[[workload]]` header.
fn by_toml(text: &str) -> Option<(serde_json::Value, Vec<(usize, usize)>)> {
    let root = DeTable::parse(text).ok()?;
    let headers = match root.get_ref().get("workload").map(|w| w.get_ref()) {
        Some(DeValue::Array(items)) => items
            .iter()
            .map(|t| (t.span().start, t.span().end))
            .collect(),
        _ => Vec::new(),
    };
    let json = serde_json::Value::deserialize(root.into_deserializer()).ok()?;
    Some((json, headers))
}

/// What the section reader makes of `text`, in the same shape.
fn by_sections(text: &str) -> Option<(serde_json::Value, Vec<(usize, usize)>)> {
    let root = parse(text, 0)?;
    let headers = root
        .entries
        .iter()
        .filter(|(k, _)| k == "workload")
        .flat_map(|(_, v)| match v {
            Val::Array(items, true) => items
                .iter()
                .filter_map(|t| match t {
                    Val::Table(t) => t.header,
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    let json = serde_json::Value::deserialize(Val::Table(root)).expect("any value reads as JSON");
    Some((json, headers))
}

/// The first workload of `text` as a spec, each way (`None` where it does not read).
fn specs(text: &str) -> (Option<String>, Option<String>) {
    let by_toml = DeTable::parse(text).ok().and_then(|root| {
        let mut root = root.into_inner();
        let w = root.remove("workload")?;
        let DeValue::Array(items) = w.into_inner() else {
            return None;
        };
        let first = items.into_iter().next()?;
        WorkloadSpec::deserialize(first.into_deserializer())
            .ok()
            .map(|s| format!("{s:?}"))
    });
    let by_sections = parse(text, 0).and_then(|mut root| {
        let Val::Array(items, true) = root.remove("workload")? else {
            return None;
        };
        let first = items.into_iter().next()?;
        WorkloadSpec::deserialize(first)
            .ok()
            .map(|s| format!("{s:?}"))
    });
    (by_toml, by_sections)
}

/// Checks the section reader against `toml` on `text`; true if it read it.
fn agrees(text: &str) -> bool {
    let Some(mine) = by_sections(text) else {
        return false;
    };
    let theirs = by_toml(text);
    assert_eq!(
        Some(&mine),
        theirs.as_ref(),
        "the section reader read what toml reads otherwise (or not at all):\n{text:?}"
    );
    let (toml_spec, my_spec) = specs(text);
    assert_eq!(my_spec, toml_spec, "the specs differ:\n{text:?}");
    true
}

/// Every `[[workload]]` section of the examples and of a generated plan, as the fast
/// path cuts them.
fn sections() -> Vec<String> {
    let mut texts = vec![scale_plan::plan_text("t", 40)];
    for p in crate::example_plan_files() {
        texts.push(std::fs::read_to_string(&p).expect("example"));
    }
    let mut out = Vec::new();
    for text in texts {
        let starts: Vec<usize> = text
            .match_indices("\n[[workload]]")
            .map(|(at, _)| at + 1)
            .collect();
        for (i, &start) in starts.iter().enumerate() {
            let end = starts.get(i + 1).copied().unwrap_or(text.len());
            out.push(text[start..end].to_owned());
        }
    }
    out
}

#[test]
fn every_section_of_the_examples_is_read_as_toml_reads_it() {
    let sections = sections();
    assert!(sections.len() > 40, "sections found: {}", sections.len());
    for s in &sections {
        assert!(agrees(s), "the section reader gave up on:\n{s}");
    }
}

#[test]
fn what_it_reads_it_reads_exactly() {
    let read = [
        "[[workload]]\na = 1\n",
        "[[ workload ]] # spaced\r\na = -0\r\nb = +17\r\nc = 1_000\r\n",
        "[[workload]]\n\"quoted key\" = 'lit\\eral'\n'x'.\"y\" = \"\\u00e9\\U0001F600\\t\\\"\\\\\"\n",
        "[[workload]]\naws . role = \"r\"\naws.tags = { a = \"1\", b.c = \"2\", }\n",
        "[[workload]]\nroles = [\n  # comment\n  { role = \"x\" },\n  \"y\", # after\n]\n",
        "[[workload]]\na = []\nb = [[1], [true, false]]\nc = {}\n",
        "[[workload]]\ncluster = \"c\"\n[workload.kubernetes]\n[[workload.kubernetes.rules]]\nverbs = [\"get\"]\n[[workload.kubernetes.rules]]\nverbs = [\"list\"]\n[[workload]]\nx = 9223372036854775807\ny = -9223372036854775808\n",
        "[[workload]]\n[workload.a.b]\nc = 1\n[workload.a.d]\ne = 1\n",
        "[[workload]]\ns = \"é ü \u{1F600}\"\n# é comment\twith tab\n",
        "[[workload]]\na = \"\"\nb = ''\n\"\" = 1\n",
        "[[workload]]\na = '''\n{\"x\": '1'}\n'''\nb = ''''''\nc = '''x'''''\nd = ''''x''''\n",
    ];
    for text in read {
        assert!(agrees(text), "gave up on:\n{text}");
    }
}

#[test]
fn what_toml_rejects_or_reads_otherwise_it_leaves_to_toml() {
    let left = [
        // Outside the subset, valid TOML.
        "[[workload]]\na = \"\"\"x\"\"\"\n",
        "[[workload]]\na = '''x\r\ny'''\n",
        "[[workload]]\na = '''x''''''\n",
        "[[workload]]\na = '''x\u{1}'''\n",
        "[[workload]]\na = 1.5\n",
        "[[workload]]\na = 1e3\n",
        "[[workload]]\na = 0x1f\n",
        "[[workload]]\na = 1979-05-27\n",
        "[[workload]]\na = inf\n",
        "[[workload]]\na = { b = 1,\n c = 2 }\n",
        "[[workload]]\na = \"\\e\"\n",
        "[[workload]]\n[workload.a.b]\n[workload.a]\n",
        "[[workload]]\na.b = 1\n[workload.a.c]\n",
        // Invalid TOML.
        "[[workload]]\na = 1\na = 2\n",
        "[[workload]]\na = 1\na.b = 2\n",
        "[[workload]]\na = { b = 1 }\na.c = 2\n",
        "[[workload]]\n[workload.k]\n[workload.k]\n",
        "[[workload]]\na = 01\n",
        "[[workload]]\na = 1__0\n",
        "[[workload]]\na = 1_\n",
        "[[workload]]\na = 9223372036854775808\n",
        "[[workload]]\na = \"x\ny\"\n",
        "[[workload]]\na = \"\u{1}\"\n",
        "[[workload]]\na = \"\\q\"\n",
        "[[workload]]\na = \"\\uD800\"\n",
        "[[workload]]\na = 'x\u{7f}'\n",
        "[[workload]]\na = 1 # \u{0}\n",
        "[[workload]]\na = truex\n",
        "[[workload]]\na = 1\rb = 2\n",
        "[[workload] ]\n",
        "[ [workload]]\n",
        "[[workload]] x\n",
        "[[workload]]\né = 1\n",
        "[[workload]]\n= 1\n",
        "[[workload]]\na = [1 2]\n",
        "[[workload]]\na = { b = 1 c = 2 }\n",
        "[workload]\n[[workload]]\n",
    ];
    for text in left {
        assert!(
            by_sections(text).is_none(),
            "the section reader read what it leaves to toml:\n{text:?}"
        );
    }
}

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_edits_of_real_sections_are_read_as_toml_reads_them_or_left_to_it() {
    const PIECES: &[&str] = &[
        "\"",
        "'",
        "[",
        "]",
        "[[",
        "]]",
        "{",
        "}",
        "=",
        ".",
        ",",
        "#",
        "\\",
        "\\u",
        "\\n",
        "\n",
        "\r",
        "\r\n",
        "\t",
        " ",
        "0",
        "1",
        "_",
        "-",
        "+",
        "a",
        "true",
        "false",
        "\"\"\"",
        "'''",
        "é",
        "\u{7f}",
        "\u{1}",
        "[[workload]]\n",
        "[workload.aws]\n",
        "x = 1\n",
        "aws.role = \"r\"\n",
        "{ a = 1 }",
        "[1, 2]",
        "1.5",
        "1979-05-27",
        "inf",
        "0x1",
    ];
    let sections = sections();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut read, mut total) = (0, 0);
    for _ in 0..20_000 {
        let mut text = sections[rng.below(sections.len())].clone();
        for _ in 0..1 + rng.below(3) {
            let boundaries: Vec<usize> = (0..=text.len())
                .filter(|&i| text.is_char_boundary(i))
                .collect();
            let at = boundaries[rng.below(boundaries.len())];
            match rng.below(3) {
                0 => text.insert_str(at, PIECES[rng.below(PIECES.len())]),
                1 => {
                    let to = boundaries[rng.below(boundaries.len())];
                    let (a, b) = (at.min(to), at.max(to));
                    if b - a < 12 {
                        text.replace_range(a..b, "");
                    }
                }
                _ => {
                    let to = boundaries[rng.below(boundaries.len())];
                    let (a, b) = (at.min(to), at.max(to));
                    if b - a < 40 {
                        let copy = text[a..b].to_owned();
                        text.insert_str(b, &copy);
                    }
                }
            }
        }
        total += 1;
        if agrees(&text) {
            read += 1;
        }
    }
    // Most edits break the section; enough must survive for the check to mean something.
    assert!(read * 10 > total, "read {read} of {total}");
}

/// A random document of the constructs the reader knows and a few it does not, with the
/// header and key clashes TOML forbids: duplicate keys, tables defined twice, dotted keys
/// into inline tables, arrays of tables mixed with tables.
fn random_document(rng: &mut Rng) -> String {
    const HEADERS: &[&str] = &[
        "[[workload]]",
        "[[ workload ]]",
        "[workload.k]",
        "[[workload.k.r]]",
        "[workload.a]",
        "[t]",
        "[t.u]",
        "['t'.\"u\"]",
        "[[t]]",
        "[workload]",
    ];
    const KEYS: &[&str] = &[
        "a", "b", "c-1", "_", "\"a\"", "'b'", "\"é\"", "\"\"", "k", "t",
    ];
    const SCALARS: &[&str] = &[
        "0",
        "-1",
        "+5",
        "1_000",
        "007",
        "1.5",
        "1e3",
        "0x1f",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "true",
        "false",
        "\"x\"",
        "\"a\\\"b\\\\c\"",
        "\"\\u00e9\\U0001F600\"",
        "\"\\e\"",
        "'lit'",
        "'''ml\nx'''",
        "'''\nml'''",
        "\"\"\"ml\"\"\"",
        "''",
        "1979-05-27",
        "inf",
    ];
    fn value(rng: &mut Rng, depth: usize) -> String {
        match rng.below(if depth > 1 { 1 } else { 4 }) {
            0 | 1 => SCALARS[rng.below(SCALARS.len())].to_owned(),
            2 => {
                let items: Vec<String> = (0..rng.below(4)).map(|_| value(rng, depth + 1)).collect();
                let sep = [", ", ",\n  ", " , "][rng.below(3)];
                let trail = if rng.below(3) == 0 { "," } else { "" };
                format!("[{}{trail}]", items.join(sep))
            }
            _ => {
                let items: Vec<String> = (0..rng.below(4))
                    .map(|_| format!("{} = {}", key(rng), value(rng, depth + 1)))
                    .collect();
                let trail = if rng.below(4) == 0 { ", " } else { " " };
                format!("{{ {}{trail}}}", items.join(", "))
            }
        }
    }
    fn key(rng: &mut Rng) -> String {
        let parts: Vec<&str> = (0..1 + rng.below(3))
            .map(|_| KEYS[rng.below(KEYS.len())])
            .collect();
        parts.join([".", " . "][rng.below(2)])
    }
    let mut text = String::new();
    for _ in 0..1 + rng.below(8) {
        let line = match rng.below(6) {
            0 => HEADERS[rng.below(HEADERS.len())].to_owned(),
            1 => "# a comment".to_owned(),
            2 => String::new(),
            _ => format!("{} = {}", key(rng), value(rng, 0)),
        };
        text.push_str(&line);
        text.push_str(["\n", "\r\n", " # c\n"][rng.below(3)]);
    }
    text
}

#[test]
fn random_documents_are_read_as_toml_reads_them_or_left_to_it() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut read, mut total) = (0, 0);
    for _ in 0..20_000 {
        let text = random_document(&mut rng);
        total += 1;
        if agrees(&text) {
            read += 1;
        }
    }
    assert!(read * 5 > total, "read {read} of {total}");
}
