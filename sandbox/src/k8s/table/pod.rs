//! The Pod row of a Table (`printPod` in kubernetes `pkg/printers/internalversion`):
//! READY counts ready containers (restartable init containers included), STATUS is the
//! phase or the most telling container reason (`Init:0/1`, `CrashLoopBackOff`,
//! `Completed`, `Terminating`), RESTARTS adds when the last one was.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::human_duration;

fn items(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

fn time_of(value: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(
        value.as_str()?,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()
}

fn condition(status: &Value, kind: &str) -> bool {
    items(&status["conditions"])
        .iter()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

/// An init container with `restartPolicy: Always` (a sidecar).
fn restartable(pod: &Value, name: &str) -> bool {
    items(&pod["spec"]["initContainers"])
        .iter()
        .any(|c| c["name"] == name && c["restartPolicy"] == "Always")
}

/// The last restart seen in a container status, when later than `latest`.
fn later_restart(status: &Value, latest: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    let finished = time_of(&status["lastState"]["terminated"]["finishedAt"]);
    match (finished, latest) {
        (Some(f), Some(l)) if f > l => Some(f),
        (Some(f), None) => Some(f),
        _ => latest,
    }
}

/// The state reason of a terminated container (`Completed`, `Signal:9`, `ExitCode:1`).
fn terminated_reason(terminated: &Value, prefix: &str) -> String {
    let reason = str_of(&terminated["reason"]);
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    match terminated["signal"].as_i64().unwrap_or(0) {
        0 => format!(
            "{prefix}ExitCode:{}",
            terminated["exitCode"].as_i64().unwrap_or(0)
        ),
        signal => format!("{prefix}Signal:{signal}"),
    }
}

/// NAME, READY, STATUS, RESTARTS, AGE, IP, NODE, NOMINATED NODE, READINESS GATES.
pub fn cells(pod: &Value, now: OffsetDateTime) -> Vec<Value> {
    let spec = &pod["spec"];
    let status = &pod["status"];
    let phase = str_of(&status["phase"]);
    let mut reason = match str_of(&status["reason"]) {
        "" => phase.to_owned(),
        r => r.to_owned(),
    };
    if items(&status["conditions"])
        .iter()
        .any(|c| c["type"] == "PodScheduled" && c["reason"] == "SchedulingGated")
    {
        reason = "SchedulingGated".to_owned();
    }
    let init_specs = items(&spec["initContainers"]);
    let total = items(&spec["containers"]).len()
        + init_specs
            .iter()
            .filter(|c| c["restartPolicy"] == "Always")
            .count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut sidecar_restarts = 0;
    let mut last_restart = None;
    let mut last_sidecar_restart = None;
    let mut initializing = false;
    for (i, c) in items(&status["initContainerStatuses"]).iter().enumerate() {
        let count = c["restartCount"].as_i64().unwrap_or(0);
        restarts += count;
        last_restart = later_restart(c, last_restart);
        let sidecar = restartable(pod, str_of(&c["name"]));
        if sidecar {
            sidecar_restarts += count;
            last_sidecar_restart = later_restart(c, last_sidecar_restart);
        }
        let terminated = &c["state"]["terminated"];
        let waiting = str_of(&c["state"]["waiting"]["reason"]);
        if terminated.is_object() && terminated["exitCode"].as_i64().unwrap_or(0) == 0 {
            continue;
        }
        if sidecar && c["started"].as_bool() == Some(true) {
            if c["ready"].as_bool() == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = if terminated.is_object() {
            terminated_reason(terminated, "Init:")
        } else if !waiting.is_empty() && waiting != "PodInitializing" {
            format!("Init:{waiting}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }
    if !initializing || condition(status, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut running = false;
        let mut error_reason = String::new();
        for c in items(&status["containerStatuses"]).iter().rev() {
            restarts += c["restartCount"].as_i64().unwrap_or(0);
            last_restart = later_restart(c, last_restart);
            let waiting = str_of(&c["state"]["waiting"]["reason"]);
            let terminated = &c["state"]["terminated"];
            if !waiting.is_empty() {
                reason = waiting.to_owned();
            } else if terminated.is_object() {
                reason = terminated_reason(terminated, "");
                if terminated["exitCode"].as_i64().unwrap_or(0) != 0 {
                    error_reason.clone_from(&reason);
                }
            } else if c["ready"].as_bool() == Some(true) && c["state"]["running"].is_object() {
                running = true;
                ready += 1;
            }
        }
        if reason == "Completed" {
            if running && condition(status, "Ready") {
                reason = "Running".to_owned();
            } else if !error_reason.is_empty() {
                reason = error_reason;
            } else if running {
                reason = "NotReady".to_owned();
            }
        }
    }
    let deleting = !pod["metadata"]["deletionTimestamp"].is_null();
    if deleting && str_of(&status["reason"]) == "NodeLost" {
        reason = "Unknown".to_owned();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_owned();
    }
    let restarts_text = match last_restart {
        Some(at) if restarts != 0 => format!(
            "{restarts} ({} ago)",
            human_duration((now - at).whole_seconds())
        ),
        _ => restarts.to_string(),
    };
    let none = |v: &str| {
        if v.is_empty() {
            "<none>".to_owned()
        } else {
            v.to_owned()
        }
    };
    let gates = items(&spec["readinessGates"]);
    let gates_text = if gates.is_empty() {
        "<none>".to_owned()
    } else {
        let met = gates
            .iter()
            .filter(|g| {
                items(&status["conditions"])
                    .iter()
                    .find(|c| c["type"] == g["conditionType"])
                    .is_some_and(|c| c["status"] == "True")
            })
            .count();
        format!("{met}/{}", gates.len())
    };
    vec![
        json!(pod["metadata"]["name"]),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_text),
        json!(time_of(&pod["metadata"]["creationTimestamp"]).map_or_else(
            || "<unknown>".to_owned(),
            |at| human_duration((now - at).whole_seconds())
        )),
        json!(none(str_of(&status["podIPs"][0]["ip"]))),
        json!(none(str_of(&spec["nodeName"]))),
        json!(none(str_of(&status["nominatedNodeName"]))),
        json!(gates_text),
    ]
}
