//! Serde helpers that keep a round trip exact where serde's defaults would not.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Reads an optional JSON value whose field is skipped when `None`: a present field is
/// `Some`, even when it holds `null` (serde's default reads `null` as `None`). Use with
/// `#[serde(default, skip_serializing_if = "Option::is_none")]`.
pub(crate) fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{
        AttrChange, AttrValue, Change, ChangeKind, Mode, ObservedResource, Ownership, Reason,
        Resource, ResourceId,
    };

    fn id(name: &str) -> ResourceId {
        ResourceId::new("k8s", "serviceaccount", ["c", "ns", name])
    }

    /// Every shape a change can take, including the ones an untagged or default encoding
    /// would blur: an unknown value next to a known object with the same keys, a live
    /// `null` next to an unset value, floats, and an id of many parts (an issuer's path).
    fn tricky() -> Vec<Change> {
        let unknown = AttrValue::Unknown {
            from: ResourceId::new("azure", "identity", ["sub", "rg", "orders"]),
            output: "client_id".into(),
        };
        let lookalike = AttrValue::Known(
            json!({"from": "azure/identity/sub/rg/orders", "output": "client_id"}),
        );
        let mut desired = Resource::new(id("a"))
            .attr("unknown", unknown.clone())
            .attr("lookalike", lookalike.clone())
            .attr("null", AttrValue::Known(json!(null)))
            // Held as text in memory, read back as a tree: the same value.
            .attr(
                "document",
                AttrValue::json(
                    &json!({"Statement": [{"Effect": "Allow"}], "Version": "2012-10-17"}),
                ),
            )
            .attr("float", 0.1 + 0.2)
            .attr("big", u64::MAX)
            .attr("negative", -3)
            .attr("text", "a|b`c<d>@e\n\u{1F600}")
            .depends_on(&ResourceId::new(
                "aws",
                "iam-oidc-provider",
                ["1", "oidc.eks.x", "id", "AB"],
            ))
            .mode(Mode::Shared)
            .adoptable("aws.adopt", true);
        desired.serialize_key = Some("k".into());
        desired.origin = Some("c/ns/a (plan.toml:1:1)".into());
        let mut observed = ObservedResource::new(id("a"), Ownership::OtherPlan("team-b".into()));
        observed.attrs.insert("null".into(), json!(null));
        observed
            .attrs
            .insert("policy".into(), json!({"Statement": [{"Effect": "Allow"}]}));
        observed.applied = Some("incomplete:0123456789abcdef".into());
        observed.depends_on.push(id("b"));
        vec![
            Change {
                id: id("a"),
                kind: ChangeKind::Update,
                reason: Reason::Blocked("why | `x`".into()),
                desired: Some(desired.into()),
                observed: Some(observed.clone().into()),
                changed: vec![
                    AttrChange {
                        key: "live-null".into(),
                        before: Some(json!(null)),
                        after: Some(AttrValue::Known(json!(null))),
                    },
                    AttrChange {
                        key: "unset".into(),
                        before: None,
                        after: Some(unknown),
                    },
                    AttrChange {
                        key: "removed".into(),
                        before: Some(json!(1.5e300)),
                        after: None,
                    },
                    AttrChange {
                        key: "lookalike".into(),
                        before: None,
                        after: Some(lookalike),
                    },
                ],
            },
            Change {
                id: id("gone"),
                kind: ChangeKind::Delete,
                reason: Reason::LeftPlan,
                desired: None,
                observed: Some(ObservedResource::new(id("gone"), Ownership::Ours).into()),
                changed: Vec::new(),
            },
            Change {
                id: id("new"),
                kind: ChangeKind::Create,
                reason: Reason::Missing,
                desired: Some(Resource::new(id("new")).into()),
                observed: None,
                changed: Vec::new(),
            },
        ]
    }

    #[test]
    fn changes_read_back_exactly_as_saved() {
        let changes = tricky();
        let text = serde_json::to_string_pretty(&changes).unwrap();
        let back: Vec<Change> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, changes);
        // And the text is stable: saving what was read gives the same bytes.
        assert_eq!(serde_json::to_string_pretty(&back).unwrap(), text);
        let float = back[0].desired.as_ref().unwrap().attrs["float"]
            .known()
            .map(std::borrow::Cow::into_owned);
        assert_eq!(float, Some(json!(0.1 + 0.2)));
    }

    #[test]
    fn an_unknown_value_and_a_known_lookalike_stay_apart() {
        let changes = tricky();
        let text = serde_json::to_value(&changes).unwrap();
        let attrs = &text[0]["desired"]["attrs"];
        assert!(attrs["unknown"].get("unknown").is_some(), "{attrs}");
        assert!(attrs["lookalike"].get("known").is_some(), "{attrs}");
        // A live null is written, an unset value is not.
        assert_eq!(text[0]["attrs"][0]["before"], json!(null));
        assert!(text[0]["attrs"][1].get("before").is_none());
    }
}
