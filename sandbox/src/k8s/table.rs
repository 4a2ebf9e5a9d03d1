//! The `meta.k8s.io` Table answers that `kubectl get` asks for
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`): the real server's columns and
//! cells for each served kind (kubernetes `pkg/printers/internalversion/printers.go`; kinds
//! without a printer there, Role and ClusterRole, get the default NAME and CREATED AT), and
//! the row objects as `includeObject` asks (`Metadata` by default, `Object`, `None`).
//!
//! The server always fills the wide (priority 1) columns; kubectl shows them with `-o wide`.
//! [`columns`] holds the column definitions, [`pod`] the Pod row.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::catalog::ResourceInfo;
use super::status::ApiError;

mod columns;
mod pod;

use columns::columns;

/// What each row carries besides its cells (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// A `PartialObjectMetadata` (the default): enough for `--show-labels` and `-L`.
    Metadata,
    /// The whole object (kubectl asks for it with `--sort-by`).
    Object,
}

impl IncludeObject {
    /// Reads `includeObject`, refusing unknown values as the real server does.
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value {
            None | Some("" | "Metadata") => Ok(Self::Metadata),
            Some("None") => Ok(Self::None),
            Some("Object") => Ok(Self::Object),
            Some(other) => Err(ApiError::bad_request(format!(
                "includeObject: Unsupported value: {other:?}: supported values: \"Metadata\", \"None\", \"Object\""
            ))),
        }
    }
}

/// The Table version an `Accept` header asks for (`v1` or `v1beta1`), when it asks for
/// one before any plain media type.
pub fn requested(accept: &str) -> Option<&'static str> {
    for media in accept.split(',') {
        let mut parts = media.split(';').map(str::trim);
        let kind = parts.next().unwrap_or_default();
        if kind != "application/json" && kind != "*/*" {
            continue;
        }
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let param = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        match (param("as"), param("g"), param("v")) {
            (Some("Table"), Some("meta.k8s.io"), Some("v1")) => return Some("v1"),
            (Some("Table"), Some("meta.k8s.io"), Some("v1beta1")) => return Some("v1beta1"),
            (None, _, _) => return None,
            _ => {}
        }
    }
    None
}

/// Go's `duration.HumanDuration`, as the AGE column prints it.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return match (hours / 24) % 365 {
            0 => format!("{}y", hours / 24 / 365),
            d => format!("{}y{d}d", hours / 24 / 365),
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn parse_time(value: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(
        value.as_str()?,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()
}

/// `translateTimestampSince`: the age of a timestamp, `<unknown>` without one.
fn since(value: &Value, now: OffsetDateTime) -> String {
    parse_time(value).map_or_else(
        || "<unknown>".to_owned(),
        |at| human_duration((now - at).whole_seconds()),
    )
}

fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

fn items(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// `labels.FormatLabels`: `k=v,...` sorted, `<none>` when empty.
fn format_labels(map: &Value) -> String {
    let mut pairs: Vec<String> = map
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", str_of(v)))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".to_owned()
    } else {
        pairs.join(",")
    }
}

/// A `LabelSelector` as `labels.Selector.String()` writes it (requirements sorted by
/// key); `none` is what an absent selector prints.
fn format_selector(selector: &Value, none: &str) -> String {
    if selector.is_null() {
        return none.to_owned();
    }
    let mut requirements: Vec<(String, String)> = Vec::new();
    for (key, value) in selector["matchLabels"].as_object().into_iter().flatten() {
        requirements.push((key.clone(), format!("{key}={}", str_of(value))));
    }
    for expr in items(&selector["matchExpressions"]) {
        let key = str_of(&expr["key"]).to_owned();
        let mut values: Vec<&str> = items(&expr["values"]).iter().map(str_of).collect();
        values.sort_unstable();
        let text = match str_of(&expr["operator"]) {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            _ => return "<error>".to_owned(),
        };
        requirements.push((key, text));
    }
    requirements.sort();
    let text: Vec<String> = requirements.into_iter().map(|(_, t)| t).collect();
    text.join(",")
}

/// A label selector as text (`app=web,tier in (a,b)`), empty when absent: the `selector`
/// of a Scale.
pub fn selector_text(selector: &Value) -> String {
    format_selector(selector, "")
}

/// `layoutContainerCells`: container names and images, comma-separated.
fn containers(pod_spec: &Value) -> (String, String) {
    let list = items(&pod_spec["containers"]);
    let names: Vec<&str> = list.iter().map(|c| str_of(&c["name"])).collect();
    let images: Vec<&str> = list.iter().map(|c| str_of(&c["image"])).collect();
    (names.join(","), images.join(","))
}

fn condition_true(conditions: &Value, kind: &str) -> bool {
    items(conditions)
        .iter()
        .find(|c| c["type"] == kind)
        .is_some_and(|c| c["status"] == "True")
}

/// `rbac.SubjectsStrings`: users, groups and `namespace/name` ServiceAccounts.
fn subjects(binding: &Value) -> [String; 3] {
    let mut out: [Vec<String>; 3] = Default::default();
    for s in items(&binding["subjects"]) {
        let name = str_of(&s["name"]);
        match str_of(&s["kind"]) {
            "User" => out[0].push(name.to_owned()),
            "Group" => out[1].push(name.to_owned()),
            "ServiceAccount" => out[2].push(format!("{}/{name}", str_of(&s["namespace"]))),
            _ => {}
        }
    }
    out.map(|list| list.join(", "))
}

/// The cells of one object (all columns, the wide ones included).
fn cells(info: &ResourceInfo, o: &Value, now: OffsetDateTime) -> Vec<Value> {
    let name = json!(o["metadata"]["name"]);
    let age = json!(since(&o["metadata"]["creationTimestamp"], now));
    let spec = &o["spec"];
    let status = &o["status"];
    let template = &spec["template"]["spec"];
    match info.resource {
        "pods" => pod::cells(o, now),
        "namespaces" => vec![name, json!(str_of(&status["phase"])), age],
        "secrets" => vec![
            name,
            json!(str_of(&o["type"])),
            json!(o["data"].as_object().map_or(0, serde_json::Map::len)),
            age,
        ],
        "serviceaccounts" => vec![name, age],
        "configmaps" => {
            let count = |field: &str| o[field].as_object().map_or(0, serde_json::Map::len);
            vec![name, json!(count("data") + count("binaryData")), age]
        }
        "deployments" => {
            let (names, images) = containers(template);
            let desired = spec["replicas"].as_i64().unwrap_or(1);
            vec![
                name,
                json!(format!("{}/{desired}", int(&status["readyReplicas"]))),
                json!(int(&status["updatedReplicas"])),
                json!(int(&status["availableReplicas"])),
                age,
                json!(names),
                json!(images),
                json!(format_selector(&spec["selector"], "")),
            ]
        }
        "replicasets" => {
            let (names, images) = containers(template);
            vec![
                name,
                json!(spec["replicas"].as_i64().unwrap_or(1)),
                json!(int(&status["replicas"])),
                json!(int(&status["readyReplicas"])),
                age,
                json!(names),
                json!(images),
                json!(format_selector(&spec["selector"], "<none>")),
            ]
        }
        "daemonsets" => {
            let (names, images) = containers(template);
            vec![
                name,
                json!(int(&status["desiredNumberScheduled"])),
                json!(int(&status["currentNumberScheduled"])),
                json!(int(&status["numberReady"])),
                json!(int(&status["updatedNumberScheduled"])),
                json!(int(&status["numberAvailable"])),
                json!(format_labels(&template["nodeSelector"])),
                age,
                json!(names),
                json!(images),
                json!(format_selector(&spec["selector"], "<none>")),
            ]
        }
        "statefulsets" => {
            let (names, images) = containers(template);
            let desired = spec["replicas"].as_i64().unwrap_or(1);
            vec![
                name,
                json!(format!("{}/{desired}", int(&status["readyReplicas"]))),
                age,
                json!(names),
                json!(images),
            ]
        }
        "jobs" => job_cells(o, now, name, age),
        "events" => event_cells(o, now),
        "cronjobs" => {
            let (names, images) = containers(&spec["jobTemplate"]["spec"]["template"]["spec"]);
            let last = if status["lastScheduleTime"].is_null() {
                "<none>".to_owned()
            } else {
                since(&status["lastScheduleTime"], now)
            };
            let suspend = match spec["suspend"].as_bool() {
                Some(true) => "True",
                Some(false) => "False",
                None => "<unset>",
            };
            vec![
                name,
                json!(str_of(&spec["schedule"])),
                json!(spec["timeZone"].as_str().unwrap_or("<none>")),
                json!(suspend),
                json!(items(&status["active"]).len()),
                json!(last),
                age,
                json!(names),
                json!(images),
                json!(format_selector(
                    &spec["jobTemplate"]["spec"]["selector"],
                    "<none>"
                )),
            ]
        }
        "rolebindings" | "clusterrolebindings" => {
            let [users, groups, accounts] = subjects(o);
            let role = format!(
                "{}/{}",
                str_of(&o["roleRef"]["kind"]),
                str_of(&o["roleRef"]["name"])
            );
            vec![
                name,
                json!(role),
                age,
                json!(users),
                json!(groups),
                json!(accounts),
            ]
        }
        _ => vec![name, json!(o["metadata"]["creationTimestamp"])],
    }
}

/// `printEvent` (wide): LAST SEEN, TYPE, REASON, OBJECT, SUBOBJECT, SOURCE, MESSAGE,
/// FIRST SEEN, COUNT, NAME.
fn event_cells(o: &Value, now: OffsetDateTime) -> Vec<Value> {
    let first = if o["firstTimestamp"].is_null() {
        since(&o["eventTime"], now)
    } else {
        since(&o["firstTimestamp"], now)
    };
    let mut last = if o["lastTimestamp"].is_null() {
        first.clone()
    } else {
        since(&o["lastTimestamp"], now)
    };
    let mut count = int(&o["count"]);
    if o["series"].is_object() {
        last = since(&o["series"]["lastObservedTime"], now);
        count = int(&o["series"]["count"]);
    } else if count == 0 {
        count = 1;
    }
    let involved = &o["involvedObject"];
    let kind = str_of(&involved["kind"]).to_lowercase();
    let target = match str_of(&involved["name"]) {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let component = match str_of(&o["source"]["component"]) {
        "" => str_of(&o["reportingComponent"]),
        c => c,
    };
    let host = match str_of(&o["source"]["host"]) {
        "" => str_of(&o["reportingInstance"]),
        h => h,
    };
    let source = if host.is_empty() {
        component.to_owned()
    } else {
        format!("{component}, {host}")
    };
    vec![
        json!(last),
        json!(str_of(&o["type"])),
        json!(str_of(&o["reason"])),
        json!(target),
        json!(str_of(&involved["fieldPath"])),
        json!(source),
        json!(str_of(&o["message"]).trim()),
        json!(first),
        json!(count),
        json!(o["metadata"]["name"]),
    ]
}

fn job_cells(o: &Value, now: OffsetDateTime, name: Value, age: Value) -> Vec<Value> {
    let spec = &o["spec"];
    let status = &o["status"];
    let succeeded = int(&status["succeeded"]);
    let completions = match spec["completions"].as_i64() {
        Some(n) => format!("{succeeded}/{n}"),
        None => match spec["parallelism"].as_i64().unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (
        parse_time(&status["startTime"]),
        parse_time(&status["completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration((now - start).whole_seconds()),
        (Some(start), Some(end)) => human_duration((end - start).whole_seconds()),
    };
    let conditions = &status["conditions"];
    let state = if condition_true(conditions, "Complete") {
        "Complete"
    } else if condition_true(conditions, "Failed") {
        "Failed"
    } else if !o["metadata"]["deletionTimestamp"].is_null() {
        "Terminating"
    } else if condition_true(conditions, "Suspended") {
        "Suspended"
    } else if condition_true(conditions, "FailureTarget") {
        "FailureTarget"
    } else if condition_true(conditions, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let (names, images) = containers(&spec["template"]["spec"]);
    vec![
        name,
        json!(state),
        json!(completions),
        json!(duration),
        age,
        json!(names),
        json!(images),
        json!(format_selector(&spec["selector"], "<none>")),
    ]
}

/// The row object `include` asks for.
fn row_object(o: &Value, include: IncludeObject) -> Option<Value> {
    match include {
        IncludeObject::None => None,
        IncludeObject::Object => Some(o.clone()),
        IncludeObject::Metadata => Some(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": o["metadata"],
        })),
    }
}

/// A Table of `objects` of kind `info`, as the real server answers a GET or LIST asking
/// for `version` (`v1` or `v1beta1`) of `meta.k8s.io` Tables.
pub fn table(
    info: &ResourceInfo,
    objects: &[Value],
    resource_version: &str,
    include: IncludeObject,
    version: &str,
    now: OffsetDateTime,
) -> Value {
    let definitions: Vec<Value> = columns(info)
        .into_iter()
        .map(|(name, kind, priority, description)| {
            json!({
                "name": name,
                "type": kind,
                "format": if name == "Name" { "name" } else { "" },
                "description": description,
                "priority": priority,
            })
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({ "cells": cells(info, o, now) });
            if info.resource == "pods" {
                match str_of(&o["status"]["phase"]) {
                    "Succeeded" => row["conditions"] = json!([{ "type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully." }]),
                    "Failed" => row["conditions"] = json!([{ "type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed." }]),
                    _ => {}
                }
            }
            if let Some(object) = row_object(o, include) {
                row["object"] = object;
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": { "resourceVersion": resource_version },
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests;
