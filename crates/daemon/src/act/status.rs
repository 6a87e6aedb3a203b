//! Writes the status ConfigMap (see `control_loop::status`): one merge patch
//! of its `data`, on the object the shipped manifests create. heatscaler never
//! creates it: `create` cannot be limited to one name in RBAC, and a grant to
//! create any ConfigMap in kube-system is broader than a status page is worth.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::error::ActuatorError;
use super::kube::{FIELD_MANAGER, KubeOps};
use crate::telemetry::{KubeResource, KubeVerb};

/// What one status write came to.
#[derive(Debug, PartialEq, Eq)]
pub enum StatusWrite {
    Written,
    /// The ConfigMap does not exist (not applied from the manifests, or deleted).
    Missing,
}

impl KubeOps {
    /// Replaces the keys of `data` in ConfigMap `namespace/name` (others stay).
    pub async fn write_status(
        &self,
        namespace: &str,
        name: &str,
        data: &std::collections::BTreeMap<String, String>,
    ) -> Result<StatusWrite, ActuatorError> {
        let api = Api::<ConfigMap>::namespaced(self.client().clone(), namespace);
        let body = Patch::Merge(json!({ "data": data }));
        let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
        match self.call(KubeVerb::Patch, KubeResource::ConfigMap, || api.patch(name, &params, &body)).await {
            Ok(_) => Ok(StatusWrite::Written),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(StatusWrite::Missing),
            Err(e) => Err(ActuatorError::kube(format!("write status ConfigMap {namespace}/{name}"))(e)),
        }
    }
}
