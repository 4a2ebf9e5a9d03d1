//! Azure's name rules (identities, resource groups, federated credentials, tags, scopes,
//! role references) and the deterministic names wid gives what it creates: federated
//! credential names from cluster, namespace and KSA, and role assignment GUIDs from scope,
//! role and principal.

use std::sync::LazyLock;

use regex::Regex;

/// The audience every AKS federated credential trusts.
pub const AUDIENCE: &str = "api://AzureADTokenExchange";

/// Azure's cap on federated identity credentials per user-assigned identity.
pub const FIC_LIMIT: usize = 20;

/// Azure's limit on tags per resource; wid's own tags count against it.
pub const TAG_LIMIT: usize = 50;

/// The longest tag value Azure accepts.
pub const TAG_VALUE_MAX: usize = 256;

/// The longest tag name Azure accepts on most resources (identities included).
pub const TAG_NAME_MAX: usize = 512;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("static regexes are valid")
}

static IDENTITY: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$"));
/// Resource group characters (letters and digits of any script, `_-.()`), not ending with
/// `.`; the length (1-90) is checked apart, since a counted repetition of a Unicode class
/// costs a large automaton to build.
static RESOURCE_GROUP: LazyLock<Regex> = LazyLock::new(|| re(r"^[-\w._()]*[-\w_()]$"));
static FIC: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,119}$"));
static GUID: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
});
static LOCATION: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-zA-Z][a-zA-Z0-9 ]{1,49}$"));
/// An ARM scope: a management group, a subscription, a resource group, or a resource
/// (provider namespace, then type/name pairs, child types included). Group names are
/// 1-90 characters, checked apart (see [`RESOURCE_GROUP`]).
static SCOPE: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"(?i)^(/providers/Microsoft\.Management/managementGroups/(?<group>[\w().-]+)",
        r"|/subscriptions/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        r"(/resourceGroups/(?<rg>[-\w._()]+)",
        r"(/providers/[A-Za-z][\w.]*(/[^/?#\s]+/[^/?#\s]+)+)?)?)$"
    ))
});

/// Why a user-assigned identity name is invalid, or `None`: 3-128 letters, digits, `-`
/// and `_`, starting with a letter or digit.
pub fn identity_issue(name: &str) -> Option<String> {
    (!IDENTITY.is_match(name)).then(|| {
        format!(
            "identity name {name:?} must be 3-128 letters, digits, '-' and '_', starting with a letter or digit"
        )
    })
}

/// Why a resource group name is invalid, or `None`: 1-90 letters, digits, `_`, `-`, `.`,
/// `(` and `)`, not ending with `.`.
pub fn resource_group_issue(name: &str) -> Option<String> {
    (!(resource_group_chars_ok(name) && name.chars().count() <= 90)).then(|| {
        format!(
            "resource group name {name:?} must be 1-90 letters, digits and _-.(), not ending with '.'"
        )
    })
}

/// Why a federated identity credential name is invalid, or `None`.
pub fn fic_issue(name: &str) -> Option<String> {
    (!FIC.is_match(name)).then(|| {
        format!(
            "federated credential name {name:?} must be 3-120 letters, digits, '-' and '_', starting with a letter or digit"
        )
    })
}

/// Whether `s` is a GUID.
pub fn is_guid(s: &str) -> bool {
    GUID.is_match(s)
}

/// Why a location is invalid, or `None` (`eastus`, `West Europe`).
pub fn location_issue(location: &str) -> Option<String> {
    (!LOCATION.is_match(location)).then(|| {
        format!("location {location:?} is not an Azure region name such as eastus or westeurope")
    })
}

/// A location as ARM returns it: lowercase, no spaces (`West Europe` is `westeurope`).
pub fn normalize_location(location: &str) -> String {
    location
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Why a role assignment scope is invalid, or `None`.
pub fn scope_issue(scope: &str) -> Option<String> {
    let trimmed = scope.trim_end_matches('/');
    let valid = if trimmed.is_ascii() {
        ascii_scope_ok(trimmed)
    } else {
        regex_scope_ok(trimmed)
    };
    (!valid).then(|| {
        format!(
            "scope {scope:?} is not an ARM scope; use /subscriptions/SUB, /subscriptions/SUB/resourceGroups/RG, a resource id under it, or /providers/Microsoft.Management/managementGroups/NAME"
        )
    })
}

/// [`SCOPE`], group names of at most 90 characters included.
fn regex_scope_ok(scope: &str) -> bool {
    SCOPE.captures(scope).is_some_and(|c| {
        ["group", "rg"]
            .iter()
            .filter_map(|n| c.name(n))
            .all(|m| m.as_str().chars().count() <= 90)
    })
}

/// `\w` of an ASCII byte: what the Unicode `\w` of [`SCOPE`] and [`RESOURCE_GROUP`]
/// matches among ASCII characters.
fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A resource group name's characters, as [`RESOURCE_GROUP`] checks them. ASCII names,
/// nearly all of them, are checked without building the Unicode automaton (0.8 ms).
fn resource_group_chars_ok(name: &str) -> bool {
    if !name.is_ascii() {
        return RESOURCE_GROUP.is_match(name);
    }
    let group_char = |b: u8| word(b) || b"-.()".contains(&b);
    name.bytes().all(group_char) && name.bytes().last().is_some_and(|b| b != b'.')
}

/// [`regex_scope_ok`] for an ASCII scope without a trailing slash: the regex, with its
/// Unicode classes and case folding, takes 2.5 ms to build, more than checking every scope
/// of a plan of thousands of workloads.
fn ascii_scope_ok(scope: &str) -> bool {
    let Some(rest) = scope.strip_prefix('/') else {
        return false;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        [providers, namespace, groups, group] if is(providers, "providers") => {
            is(namespace, "Microsoft.Management")
                && is(groups, "managementGroups")
                && name_ok(group, b"().-")
        }
        [subscriptions, id, under @ ..] if is(subscriptions, "subscriptions") && guid_ok(id) => {
            match under {
                [] => true,
                [groups, group, resource @ ..] => {
                    is(groups, "resourceGroups") && name_ok(group, b"-.()") && resource_ok(resource)
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// What may follow a resource group in a scope: nothing, or `providers/NAMESPACE` and
/// one or more type/name pairs (child types included).
fn resource_ok(segments: &[&str]) -> bool {
    match segments {
        [] => true,
        [providers, namespace, pairs @ ..] => {
            is(providers, "providers")
                && namespace
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphabetic())
                && namespace.bytes().all(|b| word(b) || b == b'.')
                && !pairs.is_empty()
                && pairs.len() % 2 == 0
                && pairs.iter().all(|p| {
                    !p.is_empty() && p.bytes().all(|b| !matches!(b, b'?' | b'#') && !is_space(b))
                })
        }
        _ => false,
    }
}

/// A scope's fixed segment, in any case (the regex is case-insensitive).
fn is(segment: &str, word: &str) -> bool {
    segment.eq_ignore_ascii_case(word)
}

/// A group name of 1-90 word characters and `extra`.
fn name_ok(name: &str, extra: &[u8]) -> bool {
    !name.is_empty() && name.len() <= 90 && name.bytes().all(|b| word(b) || extra.contains(&b))
}

/// ASCII whitespace as the regex's `\s` has it (vertical tab included).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0B' | b'\x0C' | b'\r')
}

/// A GUID in 8-4-4-4-12 hex digits of either case.
fn guid_ok(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// A scope as wid writes it: without a trailing slash.
pub fn normalize_scope(scope: &str) -> String {
    scope.trim_end_matches('/').to_owned()
}

/// The subscription a scope lies in, if it is not a management group.
pub fn scope_subscription(scope: &str) -> Option<&str> {
    let mut parts = scope.trim_start_matches('/').split('/');
    match (parts.next(), parts.next()) {
        (Some(s), Some(sub)) if s.eq_ignore_ascii_case("subscriptions") => Some(sub),
        _ => None,
    }
}

/// How a plan names a role: a role definition GUID (written bare or as a role definition
/// id), or a role name to resolve (`Storage Blob Data Reader`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RoleRef {
    /// A role definition GUID, lowercase.
    Id(String),
    /// A role name, as written.
    Name(String),
}

impl RoleRef {
    /// Reads a plan's `role`: a GUID, a `…/roleDefinitions/GUID` id, or a name. An id
    /// whose last part is not a GUID is an error.
    pub fn parse(role: &str) -> Result<Self, String> {
        let role = role.trim();
        if role.is_empty() {
            return Err("role must not be empty".into());
        }
        if is_guid(role) {
            return Ok(Self::Id(role.to_ascii_lowercase()));
        }
        if role.contains('/') {
            let lower = role.to_ascii_lowercase();
            return match lower.rsplit_once("/providers/microsoft.authorization/roledefinitions/") {
                Some((_, guid)) if is_guid(guid) => Ok(Self::Id(guid.to_owned())),
                _ => Err(format!(
                    "role {role:?} is neither a role name nor a role definition id (…/providers/Microsoft.Authorization/roleDefinitions/GUID)"
                )),
            };
        }
        if role.len() > 512 {
            return Err(format!(
                "role name is {} characters; Azure allows 512",
                role.len()
            ));
        }
        Ok(Self::Name(role.to_owned()))
    }

    /// The text wid writes in the plan's attributes: the GUID, or the name.
    pub fn text(&self) -> &str {
        match self {
            Self::Id(s) | Self::Name(s) => s,
        }
    }
}

/// The GUID at the end of a role definition id.
pub fn role_guid(role_definition_id: &str) -> String {
    role_definition_id
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// The role definition id ARM wants for a role GUID assigned at `scope`.
pub fn role_definition_id(scope: &str, guid: &str) -> String {
    match scope_subscription(scope) {
        Some(sub) => {
            format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}")
        }
        None => format!("/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
    }
}

/// 64-bit FNV-1a, for short stable name suffixes.
fn fnv(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// The federated credential wid creates for a KSA: `CLUSTER_NAMESPACE_KSA` (dots become
/// `-`), cut so the whole name fits Azure's 120 characters, then `-` and 12 hex digits
/// of a hash of the plan, cluster, namespace and KSA. Always valid, unique per KSA, and
/// recognisable as this plan's: on an identity wid adopted, only credentials with such a
/// name are wid's.
pub fn fic_name(plan: &str, cluster: &str, namespace: &str, ksa: &str) -> String {
    const SUFFIX: usize = 13;
    let readable: String = format!("{cluster}_{namespace}_{ksa}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(120 - SUFFIX)
        .collect();
    let readable = if readable.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        readable
    } else {
        format!("w{}", &readable[..readable.len().min(120 - SUFFIX - 1)])
    };
    let hash = fnv(&[plan, cluster, namespace, ksa]) & 0xffff_ffff_ffff;
    format!("{readable}-{hash:012x}")
}

/// The namespace of wid's role assignment names (a v5 UUID of wid's URL).
fn assignment_namespace() -> uuid::Uuid {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        b"https://wid.dev/azure/role-assignment",
    )
}

/// The name wid gives the role assignment of `role_guid` to `principal` at `scope`: a
/// name-based (v5) UUID of the three, case-insensitive, so every run computes the same
/// name and a recreated identity (a new principal) gets a new one.
pub fn assignment_name(scope: &str, role_guid: &str, principal: &str) -> String {
    let key = format!(
        "{}|{}|{}",
        normalize_scope(scope).to_ascii_lowercase(),
        role_guid.to_ascii_lowercase(),
        principal.to_ascii_lowercase()
    );
    uuid::Uuid::new_v5(&assignment_namespace(), key.as_bytes()).to_string()
}

/// Why a user tag is invalid, or `None`. `reserved` is wid's own prefix.
pub fn tag_issue(key: &str, value: &str, reserved: &str) -> Option<String> {
    if key.is_empty() || key.len() > TAG_NAME_MAX {
        return Some(format!(
            "tag name {key:?} must be 1-{TAG_NAME_MAX} characters"
        ));
    }
    if let Some(c) = key.chars().find(|c| "<>%&\\?/".contains(*c)) {
        return Some(format!(
            "tag name {key:?} must not contain {c:?} (Azure rejects <>%&\\?/)"
        ));
    }
    let lower = key.to_ascii_lowercase();
    if ["microsoft", "azure", "windows"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return Some(format!(
            "tag name {key:?} uses a prefix Azure reserves (microsoft, azure, windows)"
        ));
    }
    if lower.starts_with(reserved) {
        return Some(format!("tag name {key:?} is wid's own; wid sets it itself"));
    }
    if value.chars().count() > TAG_VALUE_MAX {
        return Some(format!(
            "the value of tag {key:?} is {} characters; Azure allows {TAG_VALUE_MAX}",
            value.chars().count()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ASCII checks answer as the regexes do, on scopes and names built from the
    /// pieces where the grammar can go wrong (case, separators, lengths, forbidden
    /// characters, odd type/name pairs).
    #[test]
    fn ascii_fast_paths_agree_with_the_regexes() {
        let mut seed: u64 = 0x5eed;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        let long = "r".repeat(90);
        let too_long = "g".repeat(91);
        // Each position of a scope's grammar, with right and wrong candidates.
        let providers = ["providers", "Providers", "provider", ""];
        let management = [
            "Microsoft.Management",
            "microsoft.management",
            "Microsoft_Management",
        ];
        let groups = ["managementGroups", "MANAGEMENTGROUPS", "managementGroup"];
        let subscriptions = ["subscriptions", "Subscriptions", "subscription"];
        let guids = [
            "00000000-0000-0000-0000-000000000000",
            "0A1b2C3d-4E5f-6a7B-8c9D-0e1F2a3B4c5D",
            "0000000-00000-0000-0000-000000000000",
            "g0000000-0000-0000-0000-000000000000",
            "00000000000000000000000000000000",
        ];
        let resource_groups = ["resourceGroups", "resourcegroups", "resourceGroup"];
        let names = [
            "rg-data",
            "rg(1).x",
            "rg.",
            "a b",
            "x?y",
            "x#y",
            "",
            ".",
            "-",
            "_",
            "(",
            ")",
            "a\tb",
            "a\u{b}b",
            "a;b",
            "a%b",
            long.as_str(),
            too_long.as_str(),
        ];
        let namespaces = ["Microsoft.Storage", "ns_ok.v2", "1bad", "a-b", "", "x"];
        let pairs = [
            "storageAccounts",
            "acct",
            "blobServices",
            "default",
            "a b",
            "x?",
            "y#",
            "",
            "a;b",
        ];
        let mut valid = 0;
        for _ in 0..50_000 {
            let mut parts: Vec<&str> = Vec::new();
            if next(2) == 0 {
                parts.extend([
                    providers[next(4)],
                    management[next(3)],
                    groups[next(3)],
                    names[next(names.len())],
                ]);
            } else {
                parts.extend([subscriptions[next(3)], guids[next(5)]]);
                if next(4) > 0 {
                    parts.extend([resource_groups[next(3)], names[next(names.len())]]);
                    if next(3) > 0 {
                        parts.extend([providers[next(4)], namespaces[next(namespaces.len())]]);
                        for _ in 0..next(6) {
                            parts.push(pairs[next(pairs.len())]);
                        }
                    }
                }
            }
            if next(8) == 0 {
                parts.truncate(next(parts.len() + 1));
            }
            let mut scope = parts.join("/");
            if next(10) > 0 {
                scope.insert(0, '/');
            }
            assert_eq!(
                ascii_scope_ok(&scope),
                regex_scope_ok(&scope),
                "scope {scope:?}"
            );
            valid += usize::from(regex_scope_ok(&scope));
            for name in &names {
                assert_eq!(
                    resource_group_chars_ok(name),
                    RESOURCE_GROUP.is_match(name),
                    "group name {name:?}"
                );
            }
        }
        // Valid scopes of each shape come up; the grammar is exercised, not only refused.
        assert!(
            valid > 1000,
            "{valid} valid scopes among the generated ones"
        );
        let sub = "/subscriptions/00000000-0000-0000-0000-000000000000";
        for scope in [
            sub.to_owned(),
            format!("{sub}/resourceGroups/rg-data"),
            format!("{sub}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct"),
            format!(
                "{sub}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct/blobServices/default"
            ),
            "/providers/Microsoft.Management/managementGroups/platform".to_owned(),
        ] {
            assert!(ascii_scope_ok(&scope) && regex_scope_ok(&scope), "{scope}");
        }
    }

    #[test]
    fn group_names_take_any_script_and_at_most_90_characters() {
        assert!(resource_group_issue("rg-\u{00e9}t\u{00e9}(1)").is_none());
        assert!(resource_group_issue(&"\u{00e9}".repeat(90)).is_none());
        assert!(resource_group_issue(&"a".repeat(91)).is_some());
        assert!(resource_group_issue("ends.").is_some());
        let sub = "/subscriptions/6d9a1f3e-2b7c-4e58-9a01-3c5d7e9f1b20/resourceGroups/";
        assert!(scope_issue(&format!("{sub}{}", "r".repeat(90))).is_none());
        assert!(scope_issue(&format!("{sub}{}", "r".repeat(91))).is_some());
        let mg = "/providers/Microsoft.Management/managementGroups/";
        assert!(scope_issue(&format!("{mg}{}", "g".repeat(91))).is_some());
    }

    #[test]
    fn identity_and_group_names() {
        assert!(identity_issue("orders-prod").is_none());
        assert!(identity_issue("ab").is_some());
        assert!(identity_issue("-ab").is_some());
        assert!(identity_issue("a.b.c").is_some());
        assert!(identity_issue(&"a".repeat(128)).is_none());
        assert!(identity_issue(&"a".repeat(129)).is_some());
        assert!(resource_group_issue("rg-prod.(eu)_1").is_none());
        assert!(resource_group_issue("rg.").is_some());
        assert!(resource_group_issue(&"r".repeat(91)).is_some());
    }

    #[test]
    fn fic_names_are_valid_unique_and_stable_even_for_long_inputs() {
        let a = fic_name("p", "aks-prod", "payments", "orders");
        assert!(a.starts_with("aks-prod_payments_orders-"), "{a}");
        assert!(fic_issue(&a).is_none());
        assert_eq!(a, fic_name("p", "aks-prod", "payments", "orders"));
        assert_ne!(a, fic_name("q", "aks-prod", "payments", "orders"));
        // Separators cannot make two KSAs collide: the hash sees the parts.
        assert_ne!(
            fic_name("p", "a", "b-c", "d"),
            fic_name("p", "a-b", "c", "d")
        );
        let long = fic_name("p", &"c".repeat(63), &"n".repeat(63), &"s.v1".repeat(60));
        assert_eq!(long.len(), 120);
        assert!(fic_issue(&long).is_none(), "{long}");
        let other = fic_name("p", &"c".repeat(63), &"n".repeat(63), &"s.v2".repeat(60));
        assert_ne!(long, other);
        let short = fic_name("p", "a", "b", "c");
        assert!(fic_issue(&short).is_none(), "{short}");
    }

    #[test]
    fn assignment_names_are_v5_uuids_of_scope_role_and_principal() {
        let a = assignment_name("/subscriptions/S/resourceGroups/RG/", "ABC", "P");
        assert_eq!(
            a,
            assignment_name("/subscriptions/s/resourcegroups/rg", "abc", "p")
        );
        assert_ne!(
            a,
            assignment_name("/subscriptions/s/resourcegroups/rg", "abc", "q")
        );
        let parsed = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(parsed.get_version_num(), 5);
    }

    #[test]
    fn roles_parse_as_names_or_guids() {
        let guid = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";
        assert_eq!(RoleRef::parse(guid), Ok(RoleRef::Id(guid.into())));
        assert_eq!(
            RoleRef::parse(&format!(
                "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Authorization/roleDefinitions/{}",
                guid.to_ascii_uppercase()
            )),
            Ok(RoleRef::Id(guid.into()))
        );
        assert_eq!(
            RoleRef::parse("Storage Blob Data Reader"),
            Ok(RoleRef::Name("Storage Blob Data Reader".into()))
        );
        assert!(RoleRef::parse("/subscriptions/x/roleDefinitions/nope").is_err());
        assert!(RoleRef::parse(" ").is_err());
    }

    #[test]
    fn scopes() {
        let sub = "/subscriptions/00000000-0000-0000-0000-000000000000";
        assert!(scope_issue(sub).is_none());
        assert!(scope_issue(&format!("{sub}/resourceGroups/rg-data")).is_none());
        assert!(
            scope_issue(&format!(
                "{sub}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/acct/blobServices/default/containers/c"
            ))
            .is_none()
        );
        assert!(scope_issue("/providers/Microsoft.Management/managementGroups/platform").is_none());
        assert!(scope_issue("subscriptions/x").is_some());
        assert!(scope_issue("/subscriptions/not-a-guid").is_some());
        assert!(
            scope_issue(&format!(
                "{sub}/resourceGroups/rg/providers/Microsoft.Storage"
            ))
            .is_some()
        );
        assert_eq!(
            scope_subscription(&format!("{sub}/resourceGroups/x")),
            Some("00000000-0000-0000-0000-000000000000")
        );
        assert_eq!(
            role_definition_id("/providers/Microsoft.Management/managementGroups/m", "g"),
            "/providers/Microsoft.Authorization/roleDefinitions/g"
        );
    }

    #[test]
    fn tags_and_locations() {
        assert!(tag_issue("team", "payments", "wid.dev.").is_none());
        assert!(tag_issue("a/b", "x", "wid.dev.").is_some());
        assert!(tag_issue("Microsoft.x", "x", "wid.dev.").is_some());
        assert!(tag_issue("wid.dev.plan", "x", "wid.dev.").is_some());
        assert!(tag_issue("t", &"v".repeat(257), "wid.dev.").is_some());
        assert_eq!(normalize_location("West Europe"), "westeurope");
        assert!(location_issue("westeurope").is_none());
        assert!(location_issue("west-europe").is_some());
    }
}
