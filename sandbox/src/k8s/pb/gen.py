#!/usr/bin/env python3
"""Writes generated.rs: the JSON form of every k8s-pb message a served kind reaches.

    python3 sandbox/src/k8s/pb/gen.py API_DIR APIMACHINERY_DIR && cargo fmt --all

API_DIR and APIMACHINERY_DIR are checkouts of k8s.io/api and k8s.io/apimachinery (their
`*/v1/types.go` are read; generated.rs was last written from k8s.io/api 10b39a39b and
k8s.io/apimachinery eed236ce). Run it after changing the k8s-pb version or ROOTS.

The message types and their Rust fields come from the k8s-pb sources in the local cargo
registry. How each field appears in JSON comes from the Go type it was generated from,
matched by protobuf field number: its JSON name (`podIP`, not the snake_case `pod_ip`),
whether it is a pointer (`*bool`: false is kept) or a value with `omitempty` (`bool`:
false is left out, as Go writes it), and whether it is an embedded struct whose fields
are inlined (`VolumeSource` in `Volume`). Each generated impl destructures its message
completely, so a k8s-pb upgrade that adds a field fails to compile until this is rerun.
"""

import glob
import os
import re
import sys

PB_VERSION = "0.9.0"

# Messages decoded from request bodies; everything they reach is generated too.
ROOTS = [
    "api::core::v1::ServiceAccount",
    "api::core::v1::Namespace",
    "api::core::v1::ConfigMap",
    "api::core::v1::Secret",
    "api::core::v1::Pod",
    "api::apps::v1::Deployment",
    "api::apps::v1::ReplicaSet",
    "api::apps::v1::DaemonSet",
    "api::apps::v1::StatefulSet",
    "api::batch::v1::Job",
    "api::batch::v1::CronJob",
    "api::rbac::v1::Role",
    "api::rbac::v1::RoleBinding",
    "api::rbac::v1::ClusterRole",
    "api::rbac::v1::ClusterRoleBinding",
    "api::authentication::v1::TokenRequest",
    "api::authentication::v1::SelfSubjectReview",
    "api::authentication::v1::TokenReview",
    "api::authorization::v1::SelfSubjectAccessReview",
    "api::authorization::v1::SelfSubjectRulesReview",
    "api::authorization::v1::SubjectAccessReview",
    "api::authorization::v1::LocalSubjectAccessReview",
    "apimachinery::pkg::apis::meta::v1::DeleteOptions",
]

# Messages with a JSON form of their own, written by hand in mod.rs.
SPECIAL = {
    "apimachinery::pkg::apis::meta::v1::Time",
    "apimachinery::pkg::apis::meta::v1::MicroTime",
    "apimachinery::pkg::apis::meta::v1::Duration",
    "apimachinery::pkg::apis::meta::v1::FieldsV1",
    "apimachinery::pkg::runtime::RawExtension",
    "apimachinery::pkg::util::intstr::IntOrString",
    "apimachinery::pkg::api::resource::Quantity",
    "api::authentication::v1::ExtraValue",
    "api::authorization::v1::ExtraValue",
}

GO_SCALARS = {
    "string", "bool", "int", "int32", "int64", "uint32", "uint64", "float32", "float64",
    "types.UID", "UID",
}


def registry(crate):
    home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    found = glob.glob(os.path.join(home, "registry", "src", "*", crate))
    if not found:
        sys.exit(f"{crate} is not in the cargo registry: run cargo build first")
    return found[0]


def parse_pb(src):
    """{"api::core::v1::PodSpec": [(rust_ident, type_text, tag)]} from k8s-pb."""
    structs = {}
    for path in glob.glob(os.path.join(src, "**", "mod.rs"), recursive=True):
        module = os.path.relpath(os.path.dirname(path), src).replace(os.sep, "::")
        text = open(path, encoding="utf-8").read()
        for m in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", text, re.S):
            lines = [
                line.strip()
                for line in m.group(2).splitlines()
                if not line.strip().startswith("///")
            ]
            body = " ".join(lines)
            fields = re.findall(
                r'#\[prost\([^\]]*tag = "(\d+)"\)\] pub (r#\w+|\w+): (.+?),(?= #\[| *$)', body
            )
            structs[f"{module}::{m.group(1)}"] = [(i, t, int(n)) for n, i, t in fields]
    return structs


def parse_go(path):
    """Go structs of one types.go: {"PodSpec": {number: (json_name, go_type, options)}},
    and the package's named scalar types (`type Protocol string`)."""
    text = open(path, encoding="utf-8").read()
    scalars = set(re.findall(r"^type (\w+) (?:string|bool|int32|int64|\[\]byte)\s*$", text, re.M))
    structs = {}
    for m in re.finditer(r"^type (\w+) struct \{\n(.*?)^\}", text, re.M | re.S):
        fields = {}
        for line in m.group(2).splitlines():
            line = line.strip()
            if line.startswith("//") or 'protobuf:"' not in line:
                continue
            decl, tags = line.split("`", 1)
            number = re.search(r'protobuf:"\w+,(\d+),', tags)
            json_tag = re.search(r'json:"([^"]*)"', tags)
            if not number or not json_tag:
                continue
            parts = decl.split()
            embedded = len(parts) == 1
            go_type = parts[-1]
            name, *options = json_tag.group(1).split(",")
            fields[int(number.group(1))] = (name, go_type, set(options), embedded)
        structs[m.group(1).lower()] = fields
    return structs, scalars


def load_go(api_dir, machinery_dir):
    """Go structs by lowercase k8s-pb module path and lowercase name."""
    packages = {}
    for group in ["core", "apps", "batch", "rbac", "authentication", "authorization"]:
        packages[f"api::{group}::v1"] = parse_go(os.path.join(api_dir, group, "v1", "types.go"))
    packages["apimachinery::pkg::apis::meta::v1"] = parse_go(
        os.path.join(machinery_dir, "pkg", "apis", "meta", "v1", "types.go")
    )
    return packages


def inner_types(ty):
    """The message type names a Rust field type mentions."""
    ty = ty.replace("::prost::alloc::string::String", "String")
    ty = ty.replace("::prost::alloc::vec::Vec", "Vec")
    ty = ty.replace("::core::option::Option", "Option")
    ty = ty.replace("::prost::alloc::collections::BTreeMap", "BTreeMap")
    names = re.findall(r"((?:super::)*(?:\w+::)*[A-Z]\w*)", ty)
    return [n for n in names if n not in ("Option", "Vec", "BTreeMap", "String")]


def resolve(module, name):
    parts = module.split("::")
    while name.startswith("super::"):
        parts = parts[:-1]
        name = name[len("super::"):]
    return "::".join(parts + name.split("::"))


def camel(snake):
    head, *rest = snake.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def rule(go_type, options, scalars):
    """How a field's value is kept: `keep` (pointer, list, map, or Go writes it always)
    or `omit_zero` (a value type whose zero Go leaves out)."""
    if go_type.startswith(("*", "[]", "map[")):
        return "keep"
    bare = go_type.split(".")[-1]
    scalar = go_type in GO_SCALARS or bare in scalars or bare in GO_SCALARS
    if scalar and "omitempty" in options:
        return "omit_zero"
    if "omitzero" in options:
        return "omit_zero"
    return "keep"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    pb = parse_pb(os.path.join(registry(f"k8s-pb-{PB_VERSION}"), "src"))
    go = load_go(sys.argv[1], sys.argv[2])
    todo, seen = list(ROOTS), set()
    while todo:
        path = todo.pop()
        if path in seen or path in SPECIAL:
            continue
        if path not in pb:
            sys.exit(f"no message {path} in k8s-pb")
        seen.add(path)
        module = path.rsplit("::", 1)[0]
        for _, ty, _ in pb[path]:
            for name in inner_types(ty):
                todo.append(resolve(module, name))
    out = [
        "//! Generated by gen.py from k8s-pb " + PB_VERSION + " (message fields) and the Go",
        "//! types of k8s.io/api and k8s.io/apimachinery (JSON names, pointers, omitempty);",
        "//! do not edit by hand.",
        "",
        "use k8s_pb as pb;",
        "use serde_json::Value;",
        "",
        "use super::{OmitZero, ToJson, object};",
        "",
    ]
    warnings = []
    for path in sorted(seen):
        module, name = path.rsplit("::", 1)
        go_structs, scalars = go.get(module, ({}, set()))
        go_fields = go_structs.get(name.lower())
        if go_fields is None:
            warnings.append(f"{path}: no Go struct; JSON names by rule")
            go_fields = {}
        fields = pb[path]
        out.append(f"impl ToJson for pb::{path} {{")
        out.append("    fn json(&self) -> Value {")
        if fields:
            out.append(f"        let Self {{ {', '.join(i for i, _, _ in fields)} }} = self;")
            out.append("        object(&[")
            for ident, _, number in fields:
                go_field = go_fields.get(number)
                if go_field is None:
                    json_name, how = camel(ident.removeprefix("r#")), "keep"
                    warnings.append(f"{path}.{ident} (#{number}): no Go field; {json_name}")
                else:
                    json_name, go_type, options, embedded = go_field
                    how = rule(go_type, options, scalars)
                    # An embedded struct without a JSON name is inlined.
                    if json_name == "" and (embedded or "inline" in options):
                        json_name, how = "", "keep"
                if how == "omit_zero":
                    value = f"&OmitZero({ident})"
                else:
                    value = f"{ident} as &dyn ToJson"
                out.append(f'            ("{json_name}", {value}),')
            out.append("        ])")
        else:
            out.append("        Value::Object(serde_json::Map::new())")
        out.append("    }")
        out.append("}")
        out.append("")
    target = os.path.join(os.path.dirname(os.path.abspath(__file__)), "generated.rs")
    with open(target, "w", encoding="utf-8") as f:
        f.write("\n".join(out))
    print(f"wrote {len(seen)} messages to {target}")
    for line in warnings:
        print(f"warning: {line}")


if __name__ == "__main__":
    main()
