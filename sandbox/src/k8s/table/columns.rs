//! The column definitions of each served kind, as the real server declares them.

use super::ResourceInfo;

pub(super) const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// `(name, type, priority, description)` of one column; `Name` is the `name` format.
pub(super) type Column = (&'static str, &'static str, u8, &'static str);

const NAME: Column = ("Name", "string", 0, NAME_DOC);
const AGE: Column = ("Age", "string", 0, AGE_DOC);
const CONTAINERS: Column = (
    "Containers",
    "string",
    1,
    "Names of each container in the template.",
);
const IMAGES: Column = (
    "Images",
    "string",
    1,
    "Images referenced by each container in the template.",
);
const SELECTOR: Column = (
    "Selector",
    "string",
    1,
    "A label query over pods that should match the replica count.",
);

/// The columns of a kind.
pub(super) fn columns(info: &ResourceInfo) -> Vec<Column> {
    match info.resource {
        "pods" => vec![
            NAME,
            (
                "Ready",
                "string",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            (
                "Status",
                "string",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            (
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            AGE,
            (
                "IP",
                "string",
                1,
                "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
            ),
            (
                "Node",
                "string",
                1,
                "NodeName indicates in which node this pod is scheduled.",
            ),
            (
                "Nominated Node",
                "string",
                1,
                "nominatedNodeName is set only when this pod preempts other pods on the node.",
            ),
            (
                "Readiness Gates",
                "string",
                1,
                "If specified, all readiness gates will be evaluated for pod readiness.",
            ),
        ],
        "namespaces" => vec![
            NAME,
            ("Status", "string", 0, "The status of the namespace"),
            AGE,
        ],
        "secrets" => vec![
            NAME,
            (
                "Type",
                "string",
                0,
                "Used to facilitate programmatic handling of secret data.",
            ),
            ("Data", "string", 0, "Data contains the secret data."),
            AGE,
        ],
        "serviceaccounts" => vec![NAME, AGE],
        "configmaps" => vec![
            NAME,
            ("Data", "string", 0, "Data contains the configuration data."),
            AGE,
        ],
        "deployments" => vec![
            NAME,
            ("Ready", "string", 0, "Number of the pod with ready state"),
            (
                "Up-to-date",
                "string",
                0,
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            (
                "Available",
                "string",
                0,
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        "replicasets" => vec![
            NAME,
            (
                "Desired",
                "integer",
                0,
                "Replicas is the number of desired replicas.",
            ),
            (
                "Current",
                "integer",
                0,
                "Replicas is the most recently observed number of replicas.",
            ),
            (
                "Ready",
                "integer",
                0,
                "The number of ready replicas for this replica set.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        "daemonsets" => vec![
            NAME,
            (
                "Desired",
                "integer",
                0,
                "The total number of nodes that should be running the daemon pod.",
            ),
            (
                "Current",
                "integer",
                0,
                "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
            ),
            (
                "Ready",
                "integer",
                0,
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
            ),
            (
                "Up-to-date",
                "integer",
                0,
                "The total number of nodes that are running updated daemon pod",
            ),
            (
                "Available",
                "integer",
                0,
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available.",
            ),
            (
                "Node Selector",
                "string",
                0,
                "NodeSelector is a selector which must be true for the pod to fit on a node.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        "statefulsets" => vec![
            NAME,
            ("Ready", "string", 0, "Number of the pod with ready state"),
            AGE,
            CONTAINERS,
            IMAGES,
        ],
        "jobs" => vec![
            NAME,
            ("Status", "string", 0, "Status of the job."),
            (
                "Completions",
                "string",
                0,
                "The number of pods which reached phase Succeeded.",
            ),
            (
                "Duration",
                "string",
                0,
                "Time required to complete the job.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        "cronjobs" => vec![
            NAME,
            (
                "Schedule",
                "string",
                0,
                "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
            ),
            (
                "Timezone",
                "string",
                0,
                "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones.",
            ),
            (
                "Suspend",
                "boolean",
                0,
                "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.",
            ),
            (
                "Active",
                "integer",
                0,
                "A list of pointers to currently running jobs.",
            ),
            (
                "Last Schedule",
                "string",
                0,
                "Information when was the last time the job was successfully scheduled.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        "events" => vec![
            (
                "Last Seen",
                "string",
                0,
                "The time at which the most recent occurrence of this event was recorded.",
            ),
            (
                "Type",
                "string",
                0,
                "Type of this event (Normal, Warning), new types could be added in the future",
            ),
            (
                "Reason",
                "string",
                0,
                "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
            ),
            (
                "Object",
                "string",
                0,
                "The object that this event is about.",
            ),
            (
                "Subobject",
                "string",
                1,
                "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].",
            ),
            (
                "Source",
                "string",
                1,
                "The component reporting this event. Should be a short machine understandable string.",
            ),
            (
                "Message",
                "string",
                0,
                "A human-readable description of the status of this operation.",
            ),
            (
                "First Seen",
                "string",
                1,
                "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
            ),
            (
                "Count",
                "string",
                1,
                "The number of times this event has occurred.",
            ),
            ("Name", "string", 1, NAME_DOC),
        ],
        "rolebindings" | "clusterrolebindings" => vec![
            NAME,
            (
                "Role",
                "string",
                0,
                "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.",
            ),
            AGE,
            ("Users", "string", 1, "Users in the roleBinding"),
            ("Groups", "string", 1, "Groups in the roleBinding"),
            (
                "ServiceAccounts",
                "string",
                1,
                "ServiceAccounts in the roleBinding",
            ),
        ],
        _ => vec![NAME, ("Created At", "date", 0, AGE_DOC)],
    }
}
