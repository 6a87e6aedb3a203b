//! Resource arithmetic as the kubelet does it: a pod's effective requests
//! (containers, init containers, sidecars, overhead, pod-level resources), the
//! admission check against node allocatable, and the in-place resize verdict.
//!
//! Amounts are integers in the units the kubelet's messages print: millicores
//! for `cpu`, whole units for everything else (bytes, GPUs, pods).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kubesim::quantity::Quantity as Amount;

/// Resource name → amount (millicores for cpu, whole units otherwise).
pub type Resources = BTreeMap<String, i64>;

/// One quantity in the units of its resource.
pub fn amount(resource: &str, q: &Quantity) -> i64 {
    match Amount::parse(&q.0) {
        Some(a) if resource == "cpu" => a.millis(),
        Some(a) => a.value(),
        None => 0,
    }
}

pub fn to_amounts(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
    list.into_iter().flatten().map(|(k, v)| (k.clone(), amount(k, v))).collect()
}

fn add(into: &mut Resources, other: &Resources) {
    for (k, v) in other {
        *into.entry(k.clone()).or_default() += v;
    }
}

fn max_into(into: &mut Resources, other: &Resources) {
    for (k, v) in other {
        let e = into.entry(k.clone()).or_default();
        *e = (*e).max(*v);
    }
}

/// Requests of one container under the resources the kubelet uses for it:
/// `allocated` (what it admitted) when given, the spec's otherwise.
fn container_requests(c: &Container, allocated: Option<&ResourceRequirements>) -> Resources {
    let r = allocated.or(c.resources.as_ref());
    to_amounts(r.and_then(|r| r.requests.as_ref()))
}

/// A restartable init container (a sidecar) keeps running next to the app containers.
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// The pod's effective requests (`resource.PodRequests` of the kubelet):
/// app containers plus sidecars, or the largest init step if larger, plus
/// overhead; pod-level `spec.resources` requests win where set. `allocated`
/// gives per-container requests to use instead of the spec's (a resize the
/// kubelet has not admitted does not count).
pub fn pod_requests(spec: &PodSpec, allocated: &dyn Fn(&str) -> Option<ResourceRequirements>) -> Resources {
    let mut apps = Resources::new();
    for c in &spec.containers {
        add(&mut apps, &container_requests(c, allocated(&c.name).as_ref()));
    }
    let mut sidecars = Resources::new();
    let mut init_peak = Resources::new();
    for c in spec.init_containers.iter().flatten() {
        let own = container_requests(c, allocated(&c.name).as_ref());
        if is_sidecar(c) {
            add(&mut sidecars, &own);
            max_into(&mut init_peak, &sidecars);
        } else {
            let mut step = own;
            add(&mut step, &sidecars);
            max_into(&mut init_peak, &step);
        }
    }
    add(&mut apps, &sidecars);
    max_into(&mut apps, &init_peak);
    if let Some(level) = spec.resources.as_ref().and_then(|r| r.requests.as_ref()) {
        for (k, v) in level {
            if k == "cpu" || k == "memory" {
                apps.insert(k.clone(), amount(k, v));
            }
        }
    }
    add(&mut apps, &to_amounts(spec.overhead.as_ref()));
    apps
}

/// A resource the node does not have enough of (`InsufficientResourceError`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shortfall {
    pub resource: String,
    pub requested: i64,
    pub used: i64,
    pub capacity: i64,
}

impl Shortfall {
    /// The kubelet's wording, also used in the `Deferred` resize message.
    pub fn message(&self) -> String {
        format!(
            "Node didn't have enough resource: {}, requested: {}, used: {}, capacity: {}",
            self.resource, self.requested, self.used, self.capacity
        )
    }

    /// The pod phase reason of a rejected pod: `OutOfcpu`, `OutOfnvidia.com/gpu`.
    pub fn reason(&self) -> String {
        format!("OutOf{}", self.resource)
    }
}

/// The kubelet's admission check (the scheduler's `Fits`, in its order: pods,
/// cpu, memory, ephemeral-storage, then extended resources): the first
/// resource the pod does not fit next to `others` (the admitted pods' requests).
pub fn admit(requests: &Resources, others: &Resources, other_pods: i64, allocatable: &Resources) -> Option<Shortfall> {
    let pods_cap = allocatable.get("pods").copied().unwrap_or(110);
    if other_pods + 1 > pods_cap {
        return Some(Shortfall { resource: "pods".into(), requested: 1, used: other_pods, capacity: pods_cap });
    }
    let ordered = ["cpu", "memory", "ephemeral-storage"];
    let rest = requests.keys().filter(|k| !ordered.contains(&k.as_str())).map(String::as_str);
    for resource in ordered.into_iter().chain(rest) {
        let requested = requests.get(resource).copied().unwrap_or(0);
        if requested == 0 {
            continue;
        }
        // hugepages and the like are not tracked: only what the node declares.
        let Some(&capacity) = allocatable.get(resource) else {
            if ordered.contains(&resource) {
                continue;
            }
            return Some(Shortfall { resource: resource.into(), requested, used: 0, capacity: 0 });
        };
        let used = others.get(resource).copied().unwrap_or(0);
        if used + requested > capacity {
            return Some(Shortfall { resource: resource.into(), requested, used, capacity });
        }
    }
    None
}

/// What the kubelet makes of a resize request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResizeVerdict {
    /// Admitted: allocate now, then actuate (`PodResizeInProgress`).
    Fits,
    /// Never fits this node (`PodResizePending`, reason `Infeasible`).
    Infeasible(String),
    /// Does not fit next to the other pods now (`PodResizePending`, reason `Deferred`).
    Deferred(String),
}

/// `canResizePod` of the 1.35 kubelet: infeasible when the pod's new cpu or
/// memory requests exceed the node's allocatable (memory reported first),
/// deferred when admission next to the other allocated pods fails.
pub fn judge_resize(
    requests: &Resources,
    others: &Resources,
    other_pods: i64,
    allocatable: &Resources,
) -> ResizeVerdict {
    let get = |m: &Resources, k: &str| m.get(k).copied().unwrap_or(0);
    let (cpu, mem) = (get(requests, "cpu"), get(requests, "memory"));
    let (cpu_cap, mem_cap) = (get(allocatable, "cpu"), get(allocatable, "memory"));
    if cpu > cpu_cap || mem > mem_cap {
        let detail = if mem > mem_cap {
            format!("memory, requested: {mem}, capacity: {mem_cap}")
        } else {
            format!("cpu, requested: {cpu}, capacity: {cpu_cap}")
        };
        return ResizeVerdict::Infeasible(format!("Node didn't have enough capacity: {detail}"));
    }
    match admit(requests, others, other_pods, allocatable) {
        Some(short) => ResizeVerdict::Deferred(short.message()),
        None => ResizeVerdict::Fits,
    }
}

/// The cpu and memory parts of a container's resources, as compared for a
/// resize (other resources cannot be resized in place).
pub fn cpu_memory(r: Option<&ResourceRequirements>) -> (Resources, Resources) {
    let pick = |l: Option<&BTreeMap<String, Quantity>>| {
        to_amounts(l).into_iter().filter(|(k, _)| k == "cpu" || k == "memory").collect::<Resources>()
    };
    (pick(r.and_then(|r| r.requests.as_ref())), pick(r.and_then(|r| r.limits.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Container;

    fn container(name: &str, cpu: &str, mem: &str) -> Container {
        Container {
            name: name.into(),
            resources: Some(ResourceRequirements {
                requests: Some(
                    [("cpu".to_string(), Quantity(cpu.into())), ("memory".to_string(), Quantity(mem.into()))].into(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn res(pairs: &[(&str, i64)]) -> Resources {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn init_containers_and_sidecars_count_as_the_kubelet_counts_them() {
        let mut sidecar = container("proxy", "100m", "64Mi");
        sidecar.restart_policy = Some("Always".into());
        let spec = PodSpec {
            containers: vec![container("app", "500m", "256Mi")],
            init_containers: Some(vec![sidecar, container("migrate", "2", "128Mi")]),
            overhead: Some([("cpu".to_string(), Quantity("10m".into()))].into()),
            ..Default::default()
        };
        let r = pod_requests(&spec, &|_| None);
        // cpu: max(500m + 100m, 2000m + 100m) + 10m overhead; memory: max(256+64, 128+64) MiB.
        assert_eq!(r["cpu"], 2110);
        assert_eq!(r["memory"], 320 << 20);
    }

    #[test]
    fn resize_verdicts_use_the_kubelet_messages() {
        let node = res(&[("cpu", 4000), ("memory", 8 << 30), ("pods", 110)]);
        let others = res(&[("cpu", 3000), ("memory", 1 << 30)]);
        assert_eq!(
            judge_resize(&res(&[("cpu", 5000), ("memory", 1)]), &others, 3, &node),
            ResizeVerdict::Infeasible("Node didn't have enough capacity: cpu, requested: 5000, capacity: 4000".into())
        );
        assert_eq!(
            judge_resize(&res(&[("cpu", 5000), ("memory", 9 << 30)]), &others, 3, &node),
            ResizeVerdict::Infeasible(format!(
                "Node didn't have enough capacity: memory, requested: {}, capacity: {}",
                9u64 << 30,
                8u64 << 30
            ))
        );
        assert_eq!(
            judge_resize(&res(&[("cpu", 1500)]), &others, 3, &node),
            ResizeVerdict::Deferred(
                "Node didn't have enough resource: cpu, requested: 1500, used: 3000, capacity: 4000".into()
            )
        );
        assert_eq!(judge_resize(&res(&[("cpu", 1000)]), &others, 3, &node), ResizeVerdict::Fits);
    }

    #[test]
    fn admission_checks_pods_then_cpu_then_extended_resources() {
        let node = res(&[("cpu", 4000), ("memory", 8 << 30), ("pods", 2)]);
        let short = admit(&res(&[("cpu", 100)]), &Resources::new(), 2, &node).unwrap();
        assert_eq!(short.resource, "pods");
        let short = admit(&res(&[("nvidia.com/gpu", 1)]), &Resources::new(), 0, &node).unwrap();
        assert_eq!((short.reason(), short.capacity), ("OutOfnvidia.com/gpu".to_string(), 0));
        assert!(admit(&res(&[("cpu", 4000)]), &Resources::new(), 1, &node).is_none());
    }
}
