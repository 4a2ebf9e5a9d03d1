//! Observe's first reads, started before compile ([`AwsProvider::read_ahead`]).
//!
//! Which calls observe makes first follows from the ids alone: one list of OIDC providers
//! per account (an OIDC provider's id names its account), the bulk role read of each
//! account with at least [`BULK_THRESHOLD`] wanted roles, and one association listing per
//! namespace with at least [`LIST_THRESHOLD`] wanted associations. [`first_reads`]
//! computes them for both, so the read-ahead and observe agree on every read; what
//! follows from their answers (an OIDC provider's own read, a describe per association)
//! stays with observe. A write drops whatever was read ahead.
//!
//! [`first_reads`]: AwsProvider::first_reads

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use wid_core::ahead::{self, Ahead, Taken};
use wid_core::{Owner, ReadAhead, ResourceId};

use crate::client::AwsProvider;
use crate::ids::{self, KIND_ASSOCIATION, KIND_OIDC, KIND_ROLE};
use crate::observe_bulk::{BULK_THRESHOLD, Bulk};
use crate::observe_other::{LIST_THRESHOLD, Listing, Namespace, namespace_of};

/// What observe reads before anything it reads tells it more.
#[derive(Debug, Default)]
pub(crate) struct FirstReads {
    /// Every account observe looks in.
    pub accounts: BTreeSet<String>,
    /// Accounts whose OIDC providers are listed.
    pub oidc: BTreeSet<String>,
    /// Accounts whose roles are read in bulk.
    pub bulk: BTreeSet<String>,
    /// Namespaces whose associations are listed whole.
    pub namespaces: BTreeSet<Namespace>,
}

/// Reads made ahead of observe, by what they read.
#[derive(Debug, Default)]
pub(crate) struct AheadReads {
    oidc: Ahead<String, Vec<String>>,
    bulk: Ahead<String, Option<Bulk>>,
    namespaces: Ahead<Namespace, Listing>,
}

/// The reads of [`FirstReads`] one observe took from the read-ahead: each is taken (or
/// found missing) once, all at the start, so nothing read ahead serves two observes.
#[derive(Default)]
pub(crate) struct TakenReads {
    oidc: BTreeMap<String, Taken<Vec<String>>>,
    bulk: BTreeMap<String, Taken<Option<Bulk>>>,
    namespaces: BTreeMap<Namespace, Taken<Listing>>,
}

impl TakenReads {
    /// An account's OIDC provider ARNs, as read ahead or read now.
    pub(crate) fn oidc(&mut self, account: &str) -> Taken<Vec<String>> {
        self.oidc.remove(account).unwrap_or_default()
    }

    /// An account's bulk role read, as read ahead or read now.
    pub(crate) fn bulk(&mut self, account: &str) -> Taken<Option<Bulk>> {
        self.bulk.remove(account).unwrap_or_default()
    }

    /// A namespace's association listing, as read ahead or read now.
    pub(crate) fn namespace(&mut self, ns: &Namespace) -> Taken<Listing> {
        self.namespaces.remove(ns).unwrap_or_default()
    }
}

impl AwsProvider {
    /// The first reads of an observe of `ids` for `owner`.
    pub(crate) fn first_reads<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a ResourceId>,
        owner: &Owner,
    ) -> FirstReads {
        let mut out = FirstReads::default();
        let mut roles: BTreeMap<&str, usize> = BTreeMap::new();
        let mut associations: BTreeMap<Namespace, usize> = BTreeMap::new();
        for id in ids {
            out.accounts.insert(ids::account_of(id).to_owned());
            match id.kind() {
                KIND_OIDC => {
                    out.oidc.insert(ids::account_of(id).to_owned());
                }
                KIND_ROLE => *roles.entry(ids::account_of(id)).or_default() += 1,
                KIND_ASSOCIATION => *associations.entry(namespace_of(id)).or_default() += 1,
                _ => {}
            }
        }
        out.bulk = roles
            .into_iter()
            .filter(|(_, n)| *n >= BULK_THRESHOLD)
            .map(|(account, _)| account.to_owned())
            .collect();
        out.namespaces = associations
            .into_iter()
            .filter(|(_, n)| *n >= LIST_THRESHOLD)
            .map(|(ns, _)| ns)
            .collect();
        if owner.prune {
            out.accounts.extend(
                self.clusters
                    .lock()
                    .expect("cluster set lock is never poisoned")
                    .iter()
                    .map(|(a, _, _)| a.clone()),
            );
            out.accounts.extend(self.options.profiles.keys().cloned());
            out.accounts.extend(
                self.role_accounts
                    .lock()
                    .expect("account set lock is never poisoned")
                    .iter()
                    .cloned(),
            );
            out.oidc.clone_from(&out.accounts);
        }
        out
    }

    /// Takes what was read ahead for `first`, all at once.
    pub(crate) fn take_ahead(&self, first: &FirstReads) -> TakenReads {
        TakenReads {
            oidc: self
                .ahead
                .oidc
                .take(first.oidc.iter().cloned())
                .into_iter()
                .collect(),
            bulk: self
                .ahead
                .bulk
                .take(first.bulk.iter().cloned())
                .into_iter()
                .collect(),
            namespaces: self
                .ahead
                .namespaces
                .take(first.namespaces.iter().cloned())
                .into_iter()
                .collect(),
        }
    }

    /// Registers, then makes (on the returned future), observe's first reads for these
    /// ids, within the provider's concurrency.
    pub(crate) fn read_ahead(self: Arc<Self>, ids: Vec<ResourceId>, owner: Owner) -> ReadAhead {
        let first = self.first_reads(&ids, &owner);
        let oidc = self.ahead.oidc.register(first.oidc);
        let bulk = self.ahead.bulk.register(first.bulk);
        let namespaces = self.ahead.namespaces.register(first.namespaces);
        Box::pin(async move {
            let this = &self;
            let n = this.calls.concurrency();
            futures::join!(
                ahead::fill_all(
                    oidc,
                    n,
                    |account| async move { this.oidc_arns(&account).await }
                ),
                ahead::fill_all(
                    bulk,
                    n,
                    |account| async move { this.bulk_roles(&account).await }
                ),
                ahead::fill_all(namespaces, n, |ns| async move {
                    this.namespace_associations(&ns).await
                }),
            );
        })
    }

    /// Drops every read made ahead that observe did not take.
    pub(crate) fn forget_read_ahead(&self) {
        self.ahead.oidc.forget();
        self.ahead.bulk.forget();
        self.ahead.namespaces.forget();
    }
}
