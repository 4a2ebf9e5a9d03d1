//! What wid writes on Google objects to prove what is its own, since IAM bindings carry
//! no tags.
//!
//! - **Service accounts wid creates** carry a trailer on the last line of their
//!   description: `[wid plan=PLAN applied=HASH]`. The plan name is the ownership mark;
//!   `HASH` is the [`applied_hash`](wid_core::applied_hash) of what wid last applied to the
//!   account, so a plan tells drift from a plan change. The user's own description stays
//!   first and readable; the trailer never exceeds 100 bytes.
//! - **Bindings wid adds** are recorded in *record* service accounts of the plan
//!   (`wid-rec-HASH-N` in the project of the plan's first GKE cluster, display name
//!   `wid record (plan PLAN)`): their description is a list of 8-character entries, one
//!   per binding wid added, each the start of the SHA-256 of `resource\nrole\nmember`
//!   in base32. A binding is wid's only when its entry is in the plan's record: wid never
//!   removes a binding it cannot prove it added, whoever the member is. Record accounts have
//!   no keys and no roles; nobody can act as them.
//!
//! An apply writes the entries of every binding it adds *ahead* of its first policy write,
//! in one batch, and removes after its last change the entries of bindings it did not
//! make (`record_run.rs`). One case leaves entries without their binding: a second
//! Ctrl-C (or SIGKILL) drops the run at once, before that clean-up, so the entries written
//! ahead for policy changes that had not yet written their policy stay. The next plan of
//! the same plan reads each as a binding of the plan missing from its policy, and its
//! apply makes it; a binding the plan no longer wants stays recorded without existing.

use sha2::{Digest, Sha256};

/// The longest description Google accepts (UTF-8 bytes).
pub const DESCRIPTION_LIMIT: usize = 256;
/// Entries in one record account's description: 28 entries of 8 characters and their
/// separating spaces fill 251 of its 256 bytes.
pub const ENTRIES_PER_RECORD: usize = 28;
/// The account id prefix of record accounts.
pub const RECORD_PREFIX: &str = "wid-rec-";

/// The ownership trailer of a service account wid manages.
pub fn trailer(plan: &str, applied: &str) -> String {
    format!("[wid plan={plan} applied={applied}]")
}

/// The description wid writes: the user's text, then the trailer on its own line.
pub fn description(user: Option<&str>, plan: &str, applied: &str) -> String {
    match user.filter(|u| !u.is_empty()) {
        Some(u) => format!("{u}\n{}", trailer(plan, applied)),
        None => trailer(plan, applied),
    }
}

/// How many bytes of description the user may write under `plan` (the trailer with a
/// 16-digit hash and its newline take the rest).
pub fn user_description_limit(plan: &str) -> usize {
    DESCRIPTION_LIMIT.saturating_sub(trailer(plan, &"0".repeat(16)).len() + 1)
}

/// A live description split into the user's text and wid's mark (plan, applied record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The user's part, `None` when empty.
    pub user: Option<String>,
    /// The plan named by the trailer, when there is one.
    pub plan: Option<String>,
    /// The applied record of the trailer.
    pub applied: Option<String>,
}

/// Splits a live description.
pub fn parse(desc: &str) -> Parsed {
    let (head, last) = match desc.rsplit_once('\n') {
        Some((h, l)) => (Some(h), l),
        None => (None, desc),
    };
    let mark = last
        .strip_prefix("[wid plan=")
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.split_once(" applied="));
    match mark {
        Some((plan, applied)) if !plan.is_empty() && !plan.contains(' ') => Parsed {
            user: head.filter(|h| !h.is_empty()).map(str::to_owned),
            plan: Some(plan.to_owned()),
            applied: Some(applied.to_owned()).filter(|a| !a.is_empty()),
        },
        _ => Parsed {
            user: Some(desc.to_owned()).filter(|d| !d.is_empty()),
            plan: None,
            applied: None,
        },
    }
}

fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    out
}

fn digest(text: &str) -> String {
    base32(&Sha256::digest(text.as_bytes()))
}

/// The record entry of one binding: 8 base32 characters (40 bits) of the SHA-256 of
/// `resource\nrole\nmember`.
pub fn entry(resource: &str, role: &str, member: &str) -> String {
    digest(&format!("{resource}\n{role}\n{member}"))[..8].to_owned()
}

/// The account id of the plan's `n`-th record account: `wid-rec-` and 10 base32
/// characters of the plan name's SHA-256, then `-n`.
pub fn record_account(plan: &str, n: usize) -> String {
    format!("{RECORD_PREFIX}{}-{n}", &digest(plan)[..10])
}

/// The display name that marks a record account as the plan's.
pub fn record_display_name(plan: &str) -> String {
    format!("wid record (plan {plan})")
}

/// The entries of a record account's description.
pub fn parse_entries(desc: &str) -> Vec<String> {
    desc.split_whitespace()
        .filter(|e| {
            e.len() == 8
                && e.bytes()
                    .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        })
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_description_stays_first_and_round_trips() {
        let d = description(Some("Orders service"), "payments", "0123456789abcdef");
        assert_eq!(
            d,
            "Orders service\n[wid plan=payments applied=0123456789abcdef]"
        );
        assert_eq!(
            parse(&d),
            Parsed {
                user: Some("Orders service".into()),
                plan: Some("payments".into()),
                applied: Some("0123456789abcdef".into()),
            }
        );
        let bare = description(None, "p", "incomplete:00");
        assert_eq!(parse(&bare).user, None);
        assert_eq!(parse(&bare).applied.as_deref(), Some("incomplete:00"));
        let foreign = parse("made by hand\n[wid is great]");
        assert_eq!(foreign.plan, None);
        assert_eq!(
            foreign.user.as_deref(),
            Some("made by hand\n[wid is great]")
        );
    }

    #[test]
    fn descriptions_fit_googles_limit() {
        let plan = "p".repeat(63);
        let limit = user_description_limit(&plan);
        let d = description(Some(&"x".repeat(limit)), &plan, &"f".repeat(16));
        assert_eq!(d.len(), DESCRIPTION_LIMIT);
        assert!(user_description_limit("payments") > 200);
    }

    #[test]
    fn entries_are_short_stable_and_distinct() {
        let a = entry(
            "projects/p",
            "roles/x",
            "serviceAccount:a@p.iam.gserviceaccount.com",
        );
        assert_eq!(a.len(), 8);
        assert_eq!(
            a,
            entry(
                "projects/p",
                "roles/x",
                "serviceAccount:a@p.iam.gserviceaccount.com"
            )
        );
        assert_ne!(
            a,
            entry(
                "projects/q",
                "roles/x",
                "serviceAccount:a@p.iam.gserviceaccount.com"
            )
        );
        let full: Vec<String> = (0..ENTRIES_PER_RECORD)
            .map(|i| entry("r", "x", &i.to_string()))
            .collect();
        let desc = full.join(" ");
        assert!(desc.len() <= DESCRIPTION_LIMIT);
        assert_eq!(parse_entries(&desc), full);
        let id = record_account("payments", 12);
        assert!(id.len() <= 30 && id.starts_with(RECORD_PREFIX), "{id}");
        assert!(crate::names::account_id_issue(&id).is_none());
    }
}
