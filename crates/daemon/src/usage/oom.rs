//! OOM kills, from container status: a container whose last termination
//! (`lastState.terminated`, or `state.terminated` while it is still down) has
//! `reason: OOMKilled`. The cluster observer copies the kill time into
//! [`heatscaler_core::model::Container::last_oom`]; `recommender::OomTracker` turns it
//! into events, each kill reported once.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus};

/// The `reason` the kubelet gives a container the kernel OOM killer ended.
pub const OOM_KILLED: &str = "OOMKilled";

/// When `status` says the container was last OOM-killed, if it was.
pub fn last_oom_kill(status: &ContainerStatus) -> Option<Timestamp> {
    let oom_at = |s: &Option<ContainerState>| {
        let t = s.as_ref()?.terminated.as_ref()?;
        if t.reason.as_deref() != Some(OOM_KILLED) {
            return None;
        }
        t.finished_at.as_ref().map(|f| f.0)
    };
    oom_at(&status.state).max(oom_at(&status.last_state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerStateTerminated;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn terminated(reason: &str, at: &str) -> Option<ContainerState> {
        Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                reason: Some(reason.into()),
                exit_code: 137,
                finished_at: Some(Time(at.parse().unwrap())),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn reads_oom_from_last_or_current_state() {
        let mut s = ContainerStatus { name: "app".into(), ..Default::default() };
        assert_eq!(last_oom_kill(&s), None);
        s.last_state = terminated("OOMKilled", "2026-01-01T10:00:00Z");
        assert_eq!(last_oom_kill(&s).unwrap().to_string(), "2026-01-01T10:00:00Z");
        s.state = terminated("OOMKilled", "2026-01-01T11:00:00Z");
        assert_eq!(last_oom_kill(&s).unwrap().to_string(), "2026-01-01T11:00:00Z");
        s.state = terminated("Error", "2026-01-01T12:00:00Z");
        s.last_state = terminated("Completed", "2026-01-01T09:00:00Z");
        assert_eq!(last_oom_kill(&s), None);
    }
}
