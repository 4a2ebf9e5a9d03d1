//! What the GCP record holds against what the sandbox's policies hold, for the tests
//! that check the record stays exact.
#![allow(dead_code)]

use std::collections::BTreeSet;

use wid_sandbox::gcp::GcpState;

/// Plan `plan`'s record entries, and the entries of every unconditional binding in
/// acme-prod's policies (the project's and its service accounts').
pub fn record_and_bindings(gcp: &GcpState, plan: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let prefix = wid_gcp::record::record_account(plan, 0);
    let prefix = prefix.trim_end_matches('0');
    let project = &gcp.projects["acme-prod"];
    let record = project
        .service_accounts
        .values()
        .filter(|a| a.email.starts_with(prefix))
        .flat_map(|a| wid_gcp::record::parse_entries(&a.description))
        .collect();
    let mut policies = vec![("projects/acme-prod".to_owned(), &project.policy)];
    for a in project.service_accounts.values() {
        let resource = format!("projects/acme-prod/serviceAccounts/{}", a.email);
        policies.push((resource, &a.policy));
    }
    let mut bound = BTreeSet::new();
    for (resource, policy) in policies {
        for b in policy.bindings.iter().filter(|b| b.condition.is_none()) {
            for m in &b.members {
                bound.insert(wid_gcp::record::entry(&resource, &b.role, m));
            }
        }
    }
    (record, bound)
}
