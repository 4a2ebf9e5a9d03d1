//! The resource model: compiling a validated plan into the resources it wants.

mod compile;

pub use compile::{
    Desired, Issuers, cloud_read_ahead_ids, compile, compile_scopes, kubernetes_ids, offline,
    workload_origin, workload_ref,
};
