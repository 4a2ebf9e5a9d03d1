//! The record of which tag keys wid set on an object, so that wid removes only tags it
//! set itself and never someone else's (`alpha.eksctl.io/cluster-name`, `owner=ops` on a
//! role the plan adopted survive every apply and prune).
//!
//! The keys live in wid's own tags: `wid.dev/tag-keys` and, when they do not fit in one
//! tag value (IAM and EKS allow 256 characters), `wid.dev/tag-keys.2`, `.3`, ... Keys are
//! sorted and separated by a space; inside a key `@` is written `@@`, a space `@_` and any
//! other whitespace `@HEX:` (tag keys may hold Unicode spaces, and every character used
//! here is one tag values allow). Plan-time validation makes sure the record of a block's
//! tags fits within IAM's 50 tags per role.
//!
//! The rule, for every cloud: the tags wid compares and may remove are the keys the plan
//! sets now plus the keys this record lists. A key the record does not list (someone
//! deleted a record tag, or the object predates the record) is not provably wid's, so wid
//! leaves it alone and never calls it drift.

use std::collections::BTreeSet;

/// The first record tag.
pub(crate) const TAG_KEYS_KEY: &str = "wid.dev/tag-keys";
/// IAM's and EKS's limit on a tag value, in characters.
const VALUE_LIMIT: usize = 256;

/// The tag key of record chunk `index` (0-based).
fn chunk_key(index: usize) -> String {
    if index == 0 {
        TAG_KEYS_KEY.to_owned()
    } else {
        format!("{TAG_KEYS_KEY}.{}", index + 1)
    }
}

/// Whether `key` is one of the record's tags.
pub(crate) fn is_record_key(key: &str) -> bool {
    match key.strip_prefix(TAG_KEYS_KEY) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('.')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

fn escape(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        match c {
            '@' => out.push_str("@@"),
            ' ' => out.push_str("@_"),
            c if c.is_whitespace() => {
                out.push('@');
                out.push_str(&format!("{:x}", u32::from(c)));
                out.push(':');
            }
            c => out.push(c),
        }
    }
    out
}

fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '@' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '@' => out.push('@'),
            '_' => out.push(' '),
            first => {
                let mut hex = String::from(first);
                loop {
                    match chars.next()? {
                        ':' => break,
                        h => hex.push(h),
                    }
                }
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
        }
    }
    Some(out)
}

/// The record tags for `keys`: `(tag key, value)` pairs, none when `keys` is empty. A
/// key whose escaped form alone exceeds a tag value is left out (plan-time validation
/// rejects such keys, so this never happens for a plan wid accepted).
pub(crate) fn encode<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<(String, String)> {
    let keys: BTreeSet<&str> = keys.into_iter().collect();
    let mut chunks: Vec<String> = Vec::new();
    for key in keys {
        let escaped = escape(key);
        let len = escaped.chars().count();
        if len > VALUE_LIMIT {
            continue;
        }
        match chunks.last_mut() {
            Some(last) if last.chars().count() + 1 + len <= VALUE_LIMIT => {
                last.push(' ');
                last.push_str(&escaped);
            }
            _ => chunks.push(escaped),
        }
    }
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, v)| (chunk_key(i), v))
        .collect()
}

/// How many record tags `keys` need, or `None` when some key cannot be recorded.
pub(crate) fn tags_needed<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<usize, String> {
    let keys: Vec<&str> = keys.into_iter().collect();
    if let Some(key) = keys
        .iter()
        .find(|k| escape(k).chars().count() > VALUE_LIMIT)
    {
        return Err((*key).to_owned());
    }
    Ok(encode(keys).len())
}

/// The keys an object's record tags list. A chunk that does not decode is ignored: what
/// it listed is then not provably wid's.
pub(crate) fn decode<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (key, value) in tags {
        if !is_record_key(key) {
            continue;
        }
        let Some(keys) = value
            .split(' ')
            .filter(|k| !k.is_empty())
            .map(unescape)
            .collect::<Option<Vec<String>>>()
        else {
            continue;
        };
        out.extend(keys);
    }
    out
}

/// The record tags an object carries that a new record for `keys` no longer has (the
/// record shrank): they are removed along with the keys wid dropped.
pub(crate) fn surplus<'a>(
    live: impl IntoIterator<Item = &'a str>,
    keys: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let keep: BTreeSet<String> = encode(keys).into_iter().map(|(k, _)| k).collect();
    live.into_iter()
        .filter(|k| is_record_key(k) && !keep.contains(*k))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_the_record() {
        let keys = ["team", "cost center", "a@b", "x\u{3000}y", "owner"];
        let tags = encode(keys);
        assert_eq!(tags.len(), 1);
        assert_eq!(tags[0].0, TAG_KEYS_KEY);
        assert_eq!(tags[0].1, "a@@b cost@_center owner team x@3000:y");
        let decoded = decode(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        assert_eq!(
            decoded,
            keys.iter()
                .map(|k| (*k).to_owned())
                .collect::<BTreeSet<_>>()
        );
    }

    #[test]
    fn a_long_record_spills_into_numbered_tags_of_at_most_256_characters() {
        let keys: Vec<String> = (0..40).map(|i| format!("key-number-{i:03}")).collect();
        let tags = encode(keys.iter().map(String::as_str));
        assert_eq!(tags.len(), 3);
        assert_eq!(
            tags.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            [TAG_KEYS_KEY, "wid.dev/tag-keys.2", "wid.dev/tag-keys.3"]
        );
        assert!(tags.iter().all(|(_, v)| v.chars().count() <= VALUE_LIMIT));
        let decoded = decode(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        assert_eq!(decoded.len(), 40);
        assert_eq!(tags_needed(keys.iter().map(String::as_str)), Ok(3));
        assert!(encode(std::iter::empty()).is_empty());
    }

    #[test]
    fn a_lost_or_damaged_chunk_only_shrinks_what_is_provably_wids() {
        let keys: Vec<String> = (0..40).map(|i| format!("key-number-{i:03}")).collect();
        let tags = encode(keys.iter().map(String::as_str));
        let without_second = tags
            .iter()
            .filter(|(k, _)| k != "wid.dev/tag-keys.2")
            .map(|(k, v)| (k.as_str(), v.as_str()));
        let left = decode(without_second);
        assert!(left.len() < 40 && left.iter().all(|k| keys.contains(k)));
        assert!(decode([(TAG_KEYS_KEY, "team bad@")]).is_empty());
        assert!(decode([("owner", "team")]).is_empty());
    }

    #[test]
    fn record_keys_are_recognized_and_surplus_chunks_found() {
        assert!(is_record_key(TAG_KEYS_KEY));
        assert!(is_record_key("wid.dev/tag-keys.7"));
        assert!(!is_record_key("wid.dev/tag-keys."));
        assert!(!is_record_key("wid.dev/tag-keysx"));
        assert!(!is_record_key("team"));
        let live = [TAG_KEYS_KEY, "wid.dev/tag-keys.2", "team"];
        assert_eq!(surplus(live, ["team"]), ["wid.dev/tag-keys.2"]);
        assert_eq!(surplus(live, []), [TAG_KEYS_KEY, "wid.dev/tag-keys.2"]);
    }

    #[test]
    fn a_key_too_long_to_record_is_reported() {
        let long = "@".repeat(128);
        assert_eq!(tags_needed([long.as_str()]), Ok(1));
        let spaces = "\u{3000}".repeat(60);
        assert_eq!(tags_needed([spaces.as_str()]), Err(spaces.clone()));
    }
}
