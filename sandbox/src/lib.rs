//! The embedded sandbox: stateful emulators of exactly the API subsets wid calls, served
//! on loopback, so plans can be applied with no cluster and no cloud account.
//!
//! - Kubernetes: one HTTP server per declared cluster ([`k8s`]).
//! - Clouds: one HTTP server for every cloud API, told apart by path and form action:
//!   [`aws`] (IAM over the Query protocol, EKS over REST-JSON, STS) and [`gcp`] (IAM,
//!   Resource Manager and GKE over JSON, under `/gcp/…`).
//! - Azure Resource Manager ([`azure`]) on its own HTTPS server, with a CA generated once
//!   per sandbox directory, since Azure's SDKs send bearer tokens over TLS only.
//!
//! This crate shares no code with the providers: an emulator built from the client's own
//! types would agree with the client's mistakes.
//!
//! # The directory
//!
//! | file | what |
//! | --- | --- |
//! | `state.json` | everything the emulators remember ([`State`]), compact JSON |
//! | `calls.json` | calls per API name, over all runs |
//! | `faults.json` | fault rules, written by you (never by the sandbox) |
//! | `faults.used.json` | what each rule of `faults.json` did so far (`matched`, `fired`) |
//! | `lock` | held by the process that owns the directory; holds its process id |
//! | `serve.json` | the servers of a `wid sandbox serve` that owns the directory |
//!
//! Changes are written once per burst, not once per request: within a quarter of a
//! second while requests keep coming, 25 ms after they pause, and always before the
//! sandbox stops ([`Sandbox::flush`], [`Sandbox::stop`], or drop), each file through a
//! temporary file and a rename. One process owns a directory at a time (an advisory lock
//! on `DIR/lock`, which the kernel releases when its holder exits, however it exits):
//! other wid processes use the servers of a `wid sandbox serve` that owns it, or wait
//! for the lock, saying so on stderr after a second ([`Sandbox::open`] explains why an
//! in-process sandbox is waited for rather than shared). [`read_state`] and
//! [`json_diff`] let a test compare the whole world before and after a run.
//!
//! # Faults
//!
//! Rules come from `faults.json` (read at start) or [`Sandbox::inject`] (in memory). Each
//! rule names an API name prefix, optionally an object pattern, an action, a probability
//! and a number of times ([`FaultRule`], [`FaultsFile`]). Every request is counted under
//! its API name and decided once: latency rules that fire add up, and the first other
//! rule that fires decides its fate. Unknown keys are errors that name the rule. One rule
//! per action:
//!
//! ```json
//! {"seed": 7, "rules": [
//!   {"api": "k8s:", "action": "latency", "ms": 20},
//!   {"api": "iam:CreateRole", "action": "throttle", "times": 2},
//!   {"api": "eks:", "action": "server-error", "probability": 0.05},
//!   {"api": "k8s:apply serviceaccounts", "object": "production/*", "action": "conflict"},
//!   {"api": "gcp:crm.", "action": "hang", "times": 1},
//!   {"api": "azure:roleAssignments.create", "action": "drop", "probability": 0.02},
//!   {"api": "k8s:list", "action": "truncate", "times": 1},
//!   {"api": "iam:AttachRolePolicy", "action": "lost-response", "response": "drop"},
//!   {"api": "gcp:", "action": "unauthorized", "times": 1},
//!   {"api": "iam:PutRolePolicy", "object": "orders-*", "action": "forbidden"},
//!   {"api": "azure:federatedIdentityCredentials.createOrUpdate", "action": "limit-exceeded"}
//! ]}
//! ```
//!
//! | action | on the wire |
//! | --- | --- |
//! | `throttle`, `server-error`, `conflict` | each API's own error answer ([`FaultAction`]) |
//! | `latency` (`ms`) | the answer comes `ms` later |
//! | `hang` | no answer; the connection stays open until the client gives up or the sandbox stops; nothing is applied |
//! | `drop` | the connection closes without an answer; nothing is applied |
//! | `truncate` | the request is carried out; status, headers and half the body arrive, then the connection closes |
//! | `lost-response` (`response`: `server-error`, `drop`, `hang`) | the request is carried out, then its answer is lost |
//! | `unauthorized` | 401 (AWS: 403 `InvalidClientTokenId` / `UnrecognizedClientException`, as AWS answers) |
//! | `forbidden` | 403 naming the missing permission as the API does |
//! | `limit-exceeded` | the quota the call runs into, in the API's shape |
//!
//! A rule's `object` is a substring of the object a request names or, with `*` or `?`, a
//! glob over the whole object or a `/`-separated tail of it ([`object_matches`]). The
//! object, per API: Kubernetes `CLUSTER/NAMESPACE/NAME`; IAM the role name, else the ARN
//! or URL the request names; EKS the cluster, `CLUSTER/NAMESPACE/SERVICE_ACCOUNT` for Pod
//! Identity associations, or the ARN being tagged; GCP the resource path
//! `projects/P/serviceAccounts/E`; ARM the resource id
//! `/subscriptions/S/resourceGroups/RG/providers/…`. A creation is matched by the name it
//! creates. `probability` draws are a pure function of the `seed`, the rule and how many
//! requests the rule saw, so a run is reproducible; `times` counts over all runs on the
//! directory (in `faults.used.json`; a changed rule starts from zero).

pub mod aws;
pub mod azure;
mod faults;
pub mod gcp;
mod injector;
pub mod k8s;
mod latency;
mod lock;
mod persist;
mod served;
mod server;
mod shared;
mod snapshot;
mod state;
mod wire;

pub use faults::{Fault, FaultAction, FaultRule, FaultsFile, LostAs, object_matches};
pub use injector::{Decision, RuleUse};
pub use persist::PersistStats;
pub use served::{Served, served};
pub use server::{Opened, Sandbox, SandboxError};
pub use shared::Shared;
pub use snapshot::{JsonChange, json_diff, read_state};
pub use state::{AksDecl, ClusterDecl, ClusterKind, EksDecl, GkeDecl, State};
