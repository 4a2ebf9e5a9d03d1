//! Protobuf decoding: kubectl's bytes and k8s-pb-encoded messages to JSON.

use super::*;
use pb::api::{apps, core};
use pb::apimachinery::pkg::apis::meta::v1 as meta;

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn bytes_field(number: u64, payload: &[u8], out: &mut Vec<u8>) {
    varint(number << 3 | 2, out);
    varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut type_meta = Vec::new();
    bytes_field(1, api_version.as_bytes(), &mut type_meta);
    bytes_field(2, kind.as_bytes(), &mut type_meta);
    let mut body = b"k8s\0".to_vec();
    bytes_field(1, &type_meta, &mut body);
    bytes_field(2, raw, &mut body);
    bytes_field(3, b"", &mut body);
    bytes_field(4, b"", &mut body);
    body
}

fn wrap<M: Message>(api_version: &str, kind: &str, message: &M) -> Vec<u8> {
    envelope(api_version, kind, &message.encode_to_vec())
}

/// The bytes `kubectl create token app --duration 10m --audience https://example.com
/// --audience sts.amazonaws.com --bound-object-kind Pod --bound-object-name web` sends,
/// built field by field as Go writes them (every non-pointer string, even empty).
fn kubectl_token_request() -> Vec<u8> {
    let mut bound = Vec::new();
    bytes_field(1, b"Pod", &mut bound);
    bytes_field(2, b"v1", &mut bound);
    bytes_field(3, b"web", &mut bound);
    bytes_field(4, b"", &mut bound);
    let mut spec = Vec::new();
    bytes_field(1, b"https://example.com", &mut spec);
    bytes_field(1, b"sts.amazonaws.com", &mut spec);
    bytes_field(3, &bound, &mut spec);
    varint(4 << 3, &mut spec);
    varint(600, &mut spec);
    let mut meta = Vec::new();
    bytes_field(1, b"app", &mut meta);
    bytes_field(3, b"", &mut meta);
    let mut raw = Vec::new();
    bytes_field(1, &meta, &mut raw);
    bytes_field(2, &spec, &mut raw);
    bytes_field(3, b"", &mut raw);
    envelope("authentication.k8s.io/v1", "TokenRequest", &raw)
}

#[test]
fn decodes_kubectls_token_request() {
    let request = decode(&kubectl_token_request()).expect("decodes");
    assert_eq!(
        request,
        json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": { "name": "app" },
            "spec": {
                "audiences": ["https://example.com", "sts.amazonaws.com"],
                "expirationSeconds": 600,
                "boundObjectRef": { "kind": "Pod", "apiVersion": "v1", "name": "web" },
            },
            "status": {},
        })
    );
}

#[test]
fn empty_strings_go_and_set_pointers_stay() {
    let account = core::v1::ServiceAccount {
        metadata: Some(meta::ObjectMeta {
            name: Some("app".into()),
            namespace: Some(String::new()),
            labels: [("team".to_owned(), "a".to_owned())].into(),
            ..Default::default()
        }),
        secrets: Vec::new(),
        image_pull_secrets: vec![core::v1::LocalObjectReference {
            name: Some("pull".into()),
        }],
        automount_service_account_token: Some(false),
    };
    let json = decode(&wrap("v1", "ServiceAccount", &account)).expect("decodes");
    assert_eq!(
        json,
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": { "name": "app", "labels": { "team": "a" } },
            "imagePullSecrets": [{ "name": "pull" }],
            "automountServiceAccountToken": false,
        })
    );
}

#[test]
fn secret_bytes_are_base64() {
    let secret = core::v1::Secret {
        metadata: Some(meta::ObjectMeta {
            name: Some("s".into()),
            ..Default::default()
        }),
        data: [("password".to_owned(), b"hunter2".to_vec())].into(),
        r#type: Some(String::new()),
        ..Default::default()
    };
    let json = decode(&wrap("v1", "Secret", &secret)).expect("decodes");
    assert_eq!(json["data"], json!({ "password": "aHVudGVyMg==" }));
    assert!(json.get("type").is_none(), "{json}");
}

#[test]
fn json_names_keep_go_acronyms_and_inline_structs() {
    use pb::apimachinery::pkg::util::intstr::IntOrString;
    let container = core::v1::Container {
        name: Some("web".into()),
        image: Some("nginx".into()),
        ports: vec![core::v1::ContainerPort {
            container_port: Some(80),
            ..Default::default()
        }],
        env_from: vec![core::v1::EnvFromSource {
            config_map_ref: Some(core::v1::ConfigMapEnvSource {
                local_object_reference: Some(core::v1::LocalObjectReference {
                    name: Some("settings".into()),
                }),
                optional: None,
            }),
            ..Default::default()
        }],
        resources: Some(core::v1::ResourceRequirements {
            limits: [(
                "cpu".to_owned(),
                pb::apimachinery::pkg::api::resource::Quantity {
                    string: Some("500m".into()),
                },
            )]
            .into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let deployment = apps::v1::Deployment {
        metadata: Some(meta::ObjectMeta {
            name: Some("api".into()),
            creation_timestamp: Some(meta::Time {
                seconds: Some(1_700_000_000),
                nanos: Some(0),
            }),
            ..Default::default()
        }),
        spec: Some(apps::v1::DeploymentSpec {
            replicas: Some(2),
            strategy: Some(apps::v1::DeploymentStrategy {
                r#type: Some("RollingUpdate".into()),
                rolling_update: Some(apps::v1::RollingUpdateDeployment {
                    max_surge: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: Some("25%".into()),
                    }),
                    max_unavailable: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(1),
                        str_val: Some(String::new()),
                    }),
                }),
            }),
            template: Some(core::v1::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta::default()),
                spec: Some(core::v1::PodSpec {
                    containers: vec![container],
                    host_ipc: Some(true),
                    volumes: vec![core::v1::Volume {
                        name: Some("data".into()),
                        volume_source: Some(core::v1::VolumeSource {
                            empty_dir: Some(core::v1::EmptyDirVolumeSource::default()),
                            ..Default::default()
                        }),
                    }],
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: None,
    };
    let json = decode(&wrap("apps/v1", "Deployment", &deployment)).expect("decodes");
    assert_eq!(
        json["metadata"]["creationTimestamp"],
        "2023-11-14T22:13:20Z"
    );
    let spec = &json["spec"];
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 1);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["hostIPC"], true);
    assert_eq!(pod["volumes"][0], json!({ "name": "data", "emptyDir": {} }));
    let c = &pod["containers"][0];
    assert_eq!(c["ports"], json!([{ "containerPort": 80 }]));
    assert_eq!(
        c["envFrom"],
        json!([{ "configMapRef": { "name": "settings" } }])
    );
    assert_eq!(c["resources"], json!({ "limits": { "cpu": "500m" } }));
    assert_eq!(spec["template"]["metadata"], json!({}));
}

#[test]
fn rbac_non_resource_urls_keep_their_name() {
    let role = pb::api::rbac::v1::ClusterRole {
        metadata: Some(meta::ObjectMeta {
            name: Some("r".into()),
            ..Default::default()
        }),
        rules: vec![pb::api::rbac::v1::PolicyRule {
            verbs: vec!["get".into()],
            non_resource_ur_ls: vec!["/healthz".into()],
            ..Default::default()
        }],
        aggregation_rule: None,
    };
    let json =
        decode(&wrap("rbac.authorization.k8s.io/v1", "ClusterRole", &role)).expect("decodes");
    assert_eq!(
        json["rules"],
        json!([{ "verbs": ["get"], "nonResourceURLs": ["/healthz"] }])
    );
}

#[test]
fn bad_bodies_are_refused() {
    assert_eq!(decode(b"{}"), Err(DecodeError::Magic));
    let body = kubectl_token_request();
    assert!(matches!(
        decode(&body[..body.len() - 7]),
        Err(DecodeError::Wire(_))
    ));
    assert_eq!(
        decode(&envelope("example.com/v1", "Widget", &[])),
        Err(DecodeError::Kind {
            api_version: "example.com/v1".into(),
            kind: "Widget".into()
        })
    );
}

#[test]
fn durations_read_like_go() {
    assert_eq!(go_duration(0), "0s");
    assert_eq!(go_duration(30_000_000_000), "30s");
    assert_eq!(go_duration(1_500_000_000), "1.5s");
    assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
    assert_eq!(go_duration(90_000_000_000), "1m30s");
    assert_eq!(go_duration(2_000_000), "2ms");
}
