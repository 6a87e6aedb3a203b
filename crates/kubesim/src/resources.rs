//! The resource types kubesim serves: their storage buckets and their API
//! shapes (group, version, plural, verbs, subresources) used by routing and
//! discovery.

/// A storage bucket. Two API resources can share one (core/v1 and
/// events.k8s.io/v1 events are the same objects in two shapes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    Node,
    Pod,
    Event,
    Lease,
    PodDisruptionBudget,
    Deployment,
    ReplicaSet,
    DaemonSet,
    VerticalPodAutoscaler,
    VerticalPodAutoscalerCheckpoint,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Namespace,
        Kind::Node,
        Kind::Pod,
        Kind::Event,
        Kind::Lease,
        Kind::PodDisruptionBudget,
        Kind::Deployment,
        Kind::ReplicaSet,
        Kind::DaemonSet,
        Kind::VerticalPodAutoscaler,
        Kind::VerticalPodAutoscalerCheckpoint,
    ];

    /// Kinds whose objects name owners the garbage collector follows.
    pub const DEPENDENTS: [Kind; 3] = [Kind::Pod, Kind::ReplicaSet, Kind::VerticalPodAutoscalerCheckpoint];

    pub fn index(self) -> usize {
        self as usize
    }

    /// Storage shape: apiVersion written into stored objects.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Namespace | Kind::Node | Kind::Pod | Kind::Event => "v1",
            Kind::Lease => "coordination.k8s.io/v1",
            Kind::PodDisruptionBudget => "policy/v1",
            Kind::Deployment | Kind::ReplicaSet | Kind::DaemonSet => "apps/v1",
            Kind::VerticalPodAutoscaler | Kind::VerticalPodAutoscalerCheckpoint => "autoscaling.k8s.io/v1",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Node => "Node",
            Kind::Pod => "Pod",
            Kind::Event => "Event",
            Kind::Lease => "Lease",
            Kind::PodDisruptionBudget => "PodDisruptionBudget",
            Kind::Deployment => "Deployment",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::VerticalPodAutoscaler => "VerticalPodAutoscaler",
            Kind::VerticalPodAutoscalerCheckpoint => "VerticalPodAutoscalerCheckpoint",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::Node => "nodes",
            Kind::Pod => "pods",
            Kind::Event => "events",
            Kind::Lease => "leases",
            Kind::PodDisruptionBudget => "poddisruptionbudgets",
            Kind::Deployment => "deployments",
            Kind::ReplicaSet => "replicasets",
            Kind::DaemonSet => "daemonsets",
            Kind::VerticalPodAutoscaler => "verticalpodautoscalers",
            Kind::VerticalPodAutoscalerCheckpoint => "verticalpodautoscalercheckpoints",
        }
    }

    /// The resource name used in error messages (`pods "x" not found`,
    /// `poddisruptionbudgets.policy "x" not found`).
    pub fn qualified_resource(self) -> String {
        let group = self.api_version().rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        if group.is_empty() { self.plural().to_string() } else { format!("{}.{group}", self.plural()) }
    }

    pub fn namespaced(self) -> bool {
        !matches!(self, Kind::Namespace | Kind::Node)
    }

    /// Kinds whose `status` is only writable through the status subresource.
    /// (VPA's checkpoint CRD declares no subresources: its status is written
    /// with the object.)
    pub fn has_status_subresource(self) -> bool {
        !matches!(self, Kind::Event | Kind::Lease | Kind::VerticalPodAutoscalerCheckpoint)
    }

    /// Kinds a real cluster serves from a CustomResourceDefinition, where
    /// strategic merge patch is not defined.
    pub fn is_custom(self) -> bool {
        matches!(self, Kind::VerticalPodAutoscaler | Kind::VerticalPodAutoscalerCheckpoint)
    }

    /// Kinds whose spec changes bump metadata.generation.
    pub fn tracks_generation(self) -> bool {
        !matches!(self, Kind::Event | Kind::Lease | Kind::Namespace)
    }

    pub fn from_kind_name(kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.kind() == kind)
    }
}

/// How an API resource presents its bucket's objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// Objects are served exactly as stored.
    Native,
    /// events.k8s.io/v1 view over core/v1 events.
    EventsV1,
}

/// A subresource as listed in discovery.
pub struct Subresource {
    pub name: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// One API resource: what discovery advertises and routing resolves.
pub struct ApiResource {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub bucket: Kind,
    pub view: View,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
}

impl ApiResource {
    pub fn namespaced(&self) -> bool {
        self.bucket.namespaced()
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }

    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }
}

pub const MAIN_VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

const fn status(group: &'static str, version: &'static str, kind: &'static str) -> Subresource {
    Subresource { name: "status", group, version, kind, verbs: STATUS_VERBS }
}

const fn scale() -> Subresource {
    Subresource { name: "scale", group: "autoscaling", version: "v1", kind: "Scale", verbs: STATUS_VERBS }
}

pub static RESOURCES: &[ApiResource] = &[
    ApiResource {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        bucket: Kind::Namespace,
        view: View::Native,
        short_names: &["ns"],
        categories: &[],
        subresources: &[
            status("", "v1", "Namespace"),
            Subresource { name: "finalize", group: "", version: "v1", kind: "Namespace", verbs: &["update"] },
        ],
    },
    ApiResource {
        group: "",
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        bucket: Kind::Node,
        view: View::Native,
        short_names: &["no"],
        categories: &[],
        subresources: &[
            status("", "v1", "Node"),
            Subresource {
                name: "proxy",
                group: "",
                version: "v1",
                kind: "NodeProxyOptions",
                verbs: &["create", "delete", "get", "patch", "update"],
            },
        ],
    },
    ApiResource {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        bucket: Kind::Pod,
        view: View::Native,
        short_names: &["po"],
        categories: &["all"],
        subresources: &[
            status("", "v1", "Pod"),
            Subresource { name: "eviction", group: "policy", version: "v1", kind: "Eviction", verbs: &["create"] },
            Subresource { name: "resize", group: "", version: "v1", kind: "Pod", verbs: STATUS_VERBS },
            Subresource { name: "binding", group: "", version: "v1", kind: "Binding", verbs: &["create"] },
        ],
    },
    ApiResource {
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        bucket: Kind::Event,
        view: View::Native,
        short_names: &["ev"],
        categories: &[],
        subresources: &[],
    },
    ApiResource {
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        bucket: Kind::Event,
        view: View::EventsV1,
        short_names: &["ev"],
        categories: &[],
        subresources: &[],
    },
    ApiResource {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        singular: "lease",
        kind: "Lease",
        bucket: Kind::Lease,
        view: View::Native,
        short_names: &[],
        categories: &[],
        subresources: &[],
    },
    ApiResource {
        group: "policy",
        version: "v1",
        plural: "poddisruptionbudgets",
        singular: "poddisruptionbudget",
        kind: "PodDisruptionBudget",
        bucket: Kind::PodDisruptionBudget,
        view: View::Native,
        short_names: &["pdb"],
        categories: &[],
        subresources: &[status("policy", "v1", "PodDisruptionBudget")],
    },
    ApiResource {
        group: "apps",
        version: "v1",
        plural: "deployments",
        singular: "deployment",
        kind: "Deployment",
        bucket: Kind::Deployment,
        view: View::Native,
        short_names: &["deploy"],
        categories: &["all"],
        subresources: &[status("apps", "v1", "Deployment"), scale()],
    },
    ApiResource {
        group: "apps",
        version: "v1",
        plural: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        bucket: Kind::ReplicaSet,
        view: View::Native,
        short_names: &["rs"],
        categories: &["all"],
        subresources: &[status("apps", "v1", "ReplicaSet"), scale()],
    },
    ApiResource {
        group: "apps",
        version: "v1",
        plural: "daemonsets",
        singular: "daemonset",
        kind: "DaemonSet",
        bucket: Kind::DaemonSet,
        view: View::Native,
        short_names: &["ds"],
        categories: &["all"],
        subresources: &[status("apps", "v1", "DaemonSet")],
    },
    ApiResource {
        group: "autoscaling.k8s.io",
        version: "v1",
        plural: "verticalpodautoscalers",
        singular: "verticalpodautoscaler",
        kind: "VerticalPodAutoscaler",
        bucket: Kind::VerticalPodAutoscaler,
        view: View::Native,
        short_names: &["vpa"],
        categories: &[],
        subresources: &[status("autoscaling.k8s.io", "v1", "VerticalPodAutoscaler")],
    },
    ApiResource {
        group: "autoscaling.k8s.io",
        version: "v1",
        plural: "verticalpodautoscalercheckpoints",
        singular: "verticalpodautoscalercheckpoint",
        kind: "VerticalPodAutoscalerCheckpoint",
        bucket: Kind::VerticalPodAutoscalerCheckpoint,
        view: View::Native,
        short_names: &["vpacheckpoint"],
        categories: &[],
        subresources: &[],
    },
];

/// The API groups in discovery order, with their (only) version.
pub const GROUPS: &[(&str, &str)] = &[
    ("apps", "v1"),
    ("events.k8s.io", "v1"),
    ("coordination.k8s.io", "v1"),
    ("policy", "v1"),
    ("autoscaling.k8s.io", "v1"),
];

pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ApiResource> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

pub fn in_group_version(group: &str, version: &str) -> impl Iterator<Item = &'static ApiResource> {
    let (group, version) = (group.to_string(), version.to_string());
    RESOURCES.iter().filter(move |r| r.group == group && r.version == version)
}
