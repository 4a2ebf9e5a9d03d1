//! The resource model: compiling a validated plan into the resources it wants.

mod compile;

pub use compile::{
    Desired, Found, Issuers, PER_CLOUD_MIN, Threads, cloud_read_ahead_ids, compile, compile_found,
    compile_on, compile_scopes, compile_scopes_found, compile_scopes_on, kubernetes_read_ahead_ids,
    offline, workload_origin, workload_ref,
};
