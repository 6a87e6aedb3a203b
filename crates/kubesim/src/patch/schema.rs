//! The list-merge strategies (`patchStrategy`/`patchMergeKey` in the Go types)
//! of the kinds kubesim serves, keyed by field path with list indices omitted.

use crate::resources::Kind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListStrategy {
    /// No strategy: the patch's list replaces the original (atomic lists).
    Replace,
    /// Lists of objects merged element-wise by a key field.
    MergeByKey(&'static str),
    /// Lists of scalars merged as a set union (finalizers, podCIDRs).
    MergePrimitive,
}

/// Strategies under a PodSpec, relative to it.
fn pod_spec(path: &[&str]) -> ListStrategy {
    use ListStrategy::*;
    match path {
        ["containers" | "initContainers" | "ephemeralContainers"] => MergeByKey("name"),
        ["containers" | "initContainers" | "ephemeralContainers", "env"] => MergeByKey("name"),
        ["containers" | "initContainers" | "ephemeralContainers", "ports"] => MergeByKey("containerPort"),
        ["containers" | "initContainers" | "ephemeralContainers", "volumeMounts"] => MergeByKey("mountPath"),
        ["containers" | "initContainers" | "ephemeralContainers", "volumeDevices"] => MergeByKey("devicePath"),
        ["volumes"] => MergeByKey("name"),
        ["imagePullSecrets"] => MergeByKey("name"),
        ["hostAliases"] => MergeByKey("ip"),
        ["topologySpreadConstraints"] => MergeByKey("topologyKey"),
        ["schedulingGates"] => MergeByKey("name"),
        ["resourceClaims"] => MergeByKey("name"),
        _ => Replace,
    }
}

fn object_meta(path: &[&str]) -> ListStrategy {
    match path {
        ["ownerReferences"] => ListStrategy::MergeByKey("uid"),
        ["finalizers"] => ListStrategy::MergePrimitive,
        _ => ListStrategy::Replace,
    }
}

/// The strategy for the list at `path` in an object of `kind`.
pub fn list_strategy(kind: Kind, path: &[&str]) -> ListStrategy {
    use ListStrategy::*;
    if let ["metadata", rest @ ..] = path {
        return object_meta(rest);
    }
    match kind {
        Kind::Pod => match path {
            ["spec", rest @ ..] => pod_spec(rest),
            ["status", "conditions"] => MergeByKey("type"),
            ["status", "podIPs" | "hostIPs"] => MergeByKey("ip"),
            ["status", "resourceClaimStatuses"] => MergeByKey("name"),
            _ => Replace,
        },
        Kind::Node => match path {
            ["spec", "podCIDRs"] => MergePrimitive,
            ["status", "conditions" | "addresses"] => MergeByKey("type"),
            _ => Replace,
        },
        Kind::Deployment | Kind::ReplicaSet | Kind::DaemonSet => match path {
            ["spec", "template", "metadata", rest @ ..] => object_meta(rest),
            ["spec", "template", "spec", rest @ ..] => pod_spec(rest),
            ["status", "conditions"] => MergeByKey("type"),
            _ => Replace,
        },
        Kind::PodDisruptionBudget | Kind::Namespace => match path {
            ["status", "conditions"] => MergeByKey("type"),
            _ => Replace,
        },
        Kind::Event | Kind::Lease | Kind::VerticalPodAutoscaler | Kind::VerticalPodAutoscalerCheckpoint => Replace,
    }
}
