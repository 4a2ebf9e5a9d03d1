//! The plan `wid import` writes: a TOML plan file with comments saying where each entry
//! came from, rendered deterministically (clusters, then workloads by namespace and name;
//! keys in the order the clouds give them).
//!
//! Values are written in the plainest TOML that holds them exactly: bare keys where
//! allowed, basic strings with escapes, multi-line literal strings for policy documents,
//! inline tables for short maps and dotted keys for long ones.

use serde_json::{Map, Value};

/// The longest inline table or one-line array written before breaking it up.
const INLINE_WIDTH: usize = 80;

/// A plan written by `wid import`.
#[derive(Debug, Clone, Default)]
pub struct ImportedPlan {
    /// The plan's name (its ownership scope).
    pub name: String,
    /// Comment lines at the top.
    pub header: Vec<String>,
    /// Warnings about the whole cluster, written as comments at the top.
    pub warnings: Vec<String>,
    /// The one cluster.
    pub cluster: ImportedCluster,
    /// The workloads, in the order to write them.
    pub workloads: Vec<PlanWorkload>,
    /// Closing comment lines.
    pub notes: Vec<String>,
}

/// The cluster entry.
#[derive(Debug, Clone, Default)]
pub struct ImportedCluster {
    /// Its name in the plan.
    pub name: String,
    /// `eks`, `gke` or `aks`.
    pub kind: String,
    /// The kubeconfig context, for a real cluster.
    pub context: Option<String>,
    /// The kubeconfig file, when one was named.
    pub kubeconfig: Option<String>,
    /// The cloud keys (`account`, `region`, `name`, …), in order.
    pub fields: Map<String, Value>,
    /// Where its coordinates came from.
    pub notes: Vec<String>,
}

/// One workload.
#[derive(Debug, Clone, Default)]
pub struct PlanWorkload {
    /// The KSA's namespace.
    pub namespace: String,
    /// The KSA's name.
    pub service_account: String,
    /// `automount_token` (written only when true: false is the default).
    pub automount: bool,
    /// `adopt` for the KSA.
    pub adopt: bool,
    /// The cloud block's key (`aws`).
    pub cloud: String,
    /// The cloud block, key by key.
    pub block: Map<String, Value>,
    /// Where it came from.
    pub notes: Vec<String>,
    /// What a plan would change or cannot reproduce.
    pub warnings: Vec<String>,
}

/// Prints what an import did (the plan's name, where it went, counts) on stderr: stdout
/// may be the plan itself.
pub fn import_summary(text: &str, style: super::Style) {
    eprintln!("{} {text}", style.green("imported:"));
}

/// Renders the plan file.
pub fn render_imported_plan(plan: &ImportedPlan) -> String {
    let mut out = String::new();
    for line in &plan.header {
        comment(&mut out, "", line);
    }
    for w in &plan.warnings {
        comment(&mut out, "WARNING: ", w);
    }
    out.push_str("version = 1\n");
    out.push_str(&format!("name = {}\n", string(&plan.name)));
    let c = &plan.cluster;
    out.push('\n');
    for n in &c.notes {
        comment(&mut out, "", n);
    }
    out.push_str(&format!("[clusters.{}]\n", key(&c.name)));
    out.push_str(&format!("kind = {}\n", string(&c.kind)));
    if let Some(ctx) = &c.context {
        out.push_str(&format!("context = {}\n", string(ctx)));
    }
    if let Some(k) = &c.kubeconfig {
        out.push_str(&format!("kubeconfig = {}\n", string(k)));
    }
    for (k, v) in &c.fields {
        entry(&mut out, &[k.as_str()], v);
    }
    for w in &plan.workloads {
        out.push('\n');
        for n in &w.notes {
            comment(&mut out, "", n);
        }
        for warning in &w.warnings {
            comment(&mut out, "WARNING: ", warning);
        }
        out.push_str("[[workload]]\n");
        out.push_str(&format!("cluster = {}\n", string(&c.name)));
        out.push_str(&format!("namespace = {}\n", string(&w.namespace)));
        out.push_str(&format!(
            "service_account = {}\n",
            string(&w.service_account)
        ));
        if w.automount {
            out.push_str("automount_token = true\n");
        }
        if w.adopt {
            out.push_str("adopt = true\n");
        }
        for (k, v) in &w.block {
            entry(&mut out, &[w.cloud.as_str(), k.as_str()], v);
        }
    }
    if !plan.notes.is_empty() {
        out.push('\n');
        for n in &plan.notes {
            comment(&mut out, "", n);
        }
    }
    out
}

/// A comment, wrapped at about 90 columns, every line starting with `# `.
fn comment(out: &mut String, prefix: &str, text: &str) {
    let mut line = format!("# {prefix}");
    let start = line.len();
    for word in text.split_whitespace() {
        if line.len() > start && line.len() + 1 + word.len() > 90 {
            out.push_str(line.trim_end());
            out.push('\n');
            line = "#   ".to_owned();
        }
        if !line.ends_with(' ') {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// `path = value`; a map that is too long for one line, or holds multi-line text,
/// becomes one dotted key per entry.
fn entry(out: &mut String, path: &[&str], v: &Value) {
    if let Value::Object(m) = v {
        let inline = inline_value(v);
        if m.is_empty() || (inline.len() <= INLINE_WIDTH && !m.values().any(multi_line)) {
            out.push_str(&format!("{} = {inline}\n", dotted(path)));
        } else {
            for (k, sub) in m {
                let mut p = path.to_vec();
                p.push(k);
                entry(out, &p, sub);
            }
        }
        return;
    }
    out.push_str(&format!("{} = {}\n", dotted(path), value(v)));
}

fn dotted(path: &[&str]) -> String {
    path.iter().map(|k| key(k)).collect::<Vec<_>>().join(".")
}

/// Whether a value is a string best written over several lines.
fn multi_line(v: &Value) -> bool {
    v.as_str().is_some_and(|s| literal_block(s).is_some())
}

/// A value at the top of a line: multi-line strings as literal blocks, long arrays one
/// item a line.
fn value(v: &Value) -> String {
    match v {
        Value::String(s) => literal_block(s).unwrap_or_else(|| string(s)),
        Value::Array(items) => {
            let one_line = inline_value(v);
            if one_line.len() <= INLINE_WIDTH || items.len() < 2 {
                one_line
            } else {
                let mut s = String::from("[\n");
                for item in items {
                    s.push_str(&format!("    {},\n", inline_value(item)));
                }
                s.push(']');
                s
            }
        }
        other => inline_value(other),
    }
}

/// A value on one line.
fn inline_value(v: &Value) -> String {
    match v {
        Value::Null => "\"\"".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(inline_value)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(m) if m.is_empty() => "{}".to_owned(),
        Value::Object(m) => format!(
            "{{ {} }}",
            m.iter()
                .map(|(k, v)| format!("{} = {}", key(k), inline_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A bare key when TOML allows one, else a quoted key.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        k.to_owned()
    } else {
        string(k)
    }
}

/// A TOML basic string, escaped.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A multi-line literal string holding `s` exactly, when `s` spans lines and a literal
/// can hold it (no `'''`, no control characters but newlines and tabs, no CR).
fn literal_block(s: &str) -> Option<String> {
    let fits = s.contains('\n')
        && !s.contains("'''")
        && !s.ends_with('\'')
        && s.chars()
            .all(|c| c == '\n' || c == '\t' || !(c.is_control()));
    // The newline right after the opening delimiter is not part of the value.
    fits.then(|| format!("'''\n{s}'''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan() -> ImportedPlan {
        let mut block = Map::new();
        block.insert("role".into(), json!("orders"));
        block.insert(
            "inline_policies".into(),
            json!({"s3": "{\n  \"Version\": \"2012-10-17\"\n}", "odd.name": "{}"}),
        );
        block.insert(
            "tags".into(),
            json!({"team": "shop", "kubernetes.io/x": "a\"b"}),
        );
        block.insert(
            "managed_policies".into(),
            json!([
                "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
                "arn:aws:iam::aws:policy/AmazonSQSReadOnlyAccess"
            ]),
        );
        block.insert("max_session_duration".into(), json!(7200));
        block.insert("adopt".into(), json!(true));
        let mut fields = Map::new();
        fields.insert("account".into(), json!("111122223333"));
        ImportedPlan {
            name: "prod".into(),
            header: vec!["Imported by wid import.".into()],
            warnings: vec!["a cluster-wide warning".into()],
            cluster: ImportedCluster {
                name: "prod".into(),
                kind: "eks".into(),
                context: Some("arn:aws:eks:us-east-1:111122223333:cluster/prod".into()),
                kubeconfig: None,
                fields,
                notes: vec!["from the context".into()],
            },
            workloads: vec![PlanWorkload {
                namespace: "shop".into(),
                service_account: "orders".into(),
                automount: true,
                adopt: true,
                cloud: "aws".into(),
                block,
                notes: vec!["where it came from".into()],
                warnings: vec!["careful".into()],
            }],
            notes: vec!["the end".into()],
        }
    }

    #[test]
    fn the_rendered_plan_parses_back_to_the_same_values() {
        let text = render_imported_plan(&plan());
        let doc: toml_edit::DocumentMut = text.parse().expect("valid TOML");
        let w = &doc["workload"][0];
        assert_eq!(w["aws"]["role"].as_str(), Some("orders"));
        assert_eq!(
            w["aws"]["inline_policies"]["s3"].as_str(),
            Some("{\n  \"Version\": \"2012-10-17\"\n}")
        );
        assert_eq!(w["aws"]["inline_policies"]["odd.name"].as_str(), Some("{}"));
        assert_eq!(w["aws"]["tags"]["kubernetes.io/x"].as_str(), Some("a\"b"));
        assert_eq!(w["aws"]["max_session_duration"].as_integer(), Some(7200));
        assert_eq!(w["automount_token"].as_bool(), Some(true));
        assert_eq!(
            doc["clusters"]["prod"]["context"].as_str(),
            Some("arn:aws:eks:us-east-1:111122223333:cluster/prod")
        );
        assert!(text.contains("# WARNING: careful\n"), "{text}");
    }

    #[test]
    fn strings_that_a_literal_cannot_hold_are_escaped() {
        assert_eq!(literal_block("a'''b\n"), None);
        assert_eq!(literal_block("one line"), None);
        assert_eq!(literal_block("ends with quote\n'"), None);
        assert_eq!(string("tab\there \u{1}"), "\"tab\\there \\u0001\"");
        assert_eq!(key("kubernetes.io/name"), "\"kubernetes.io/name\"");
        assert_eq!(key("team_a-1"), "team_a-1");
    }

    #[test]
    fn long_comments_wrap() {
        let mut out = String::new();
        comment(&mut out, "WARNING: ", &"word ".repeat(40));
        assert!(
            out.lines().all(|l| l.starts_with('#') && l.len() <= 96),
            "{out}"
        );
        assert!(out.lines().count() > 1);
    }
}
