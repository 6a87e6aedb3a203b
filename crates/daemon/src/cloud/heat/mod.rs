//! Heat's orchestration API (v1): what heatscaler asks of a stack.

mod types;

use std::time::{Duration, Instant};

use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::json;

pub use types::{Link, Output, Resource, Stack, StackRef, State, parse_status};

use super::{Cloud, CloudError};

/// A Heat client on top of an authenticated [`Cloud`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HeatClient {
    cloud: Cloud,
}

/// A new stack, as the tests and tooling create them.
#[derive(Clone, Debug, Default)]
pub struct NewStack {
    pub name: String,
    pub template: String,
    /// Files the template refers to (nested templates), by the name used in it.
    pub files: Vec<(String, String)>,
    pub environment: Option<serde_json::Value>,
    pub parameters: serde_json::Map<String, serde_json::Value>,
    pub timeout_mins: Option<u32>,
}

impl HeatClient {
    pub fn new(cloud: Cloud) -> Self {
        HeatClient { cloud }
    }

    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    /// `segments` appended to Heat's catalog URL (which ends in the project ID),
    /// each percent-encoded: member names come from templates.
    async fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, CloudError> {
        let mut url = self.cloud.endpoint("orchestration").await?;
        let text = url.to_string();
        url.path_segments_mut()
            .map_err(|_| CloudError::Config(format!("Heat endpoint {text} cannot take a path")))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    async fn get<T: DeserializeOwned>(
        &self,
        op: &str,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<T, CloudError> {
        let url = self.url(segments, query).await?;
        let body = self.cloud.call(op, Method::GET, &url, None, true).await?;
        parse(op, &body)
    }

    /// A stack by name or ID, with its status and parameters. Outputs are resolved
    /// only when asked for: resolving them can be slow and may fail on its own.
    pub async fn show_stack(&self, stack: &str, with_outputs: bool) -> Result<Stack, CloudError> {
        let op = format!("show stack {stack}");
        let query: &[(&str, &str)] = if with_outputs { &[] } else { &[("resolve_outputs", "false")] };
        // By name alone Heat answers with a redirect to stacks/<name>/<id>, which reqwest follows.
        Ok(self.get::<types::StackBody>(&op, &["stacks", stack], query).await?.stack)
    }

    /// One output of a stack, resolved by Heat.
    pub async fn stack_output(&self, stack: &StackRef, key: &str) -> Result<Output, CloudError> {
        let op = format!("show output {key} of stack {stack}");
        Ok(self.get::<types::OutputBody>(&op, &["stacks", &stack.name, &stack.id, "outputs", key], &[]).await?.output)
    }

    /// The stack's resources; `nested_depth` > 0 includes nested stacks' resources
    /// (each with `parent_resource`).
    pub async fn list_resources(&self, stack: &StackRef, nested_depth: u32) -> Result<Vec<Resource>, CloudError> {
        let op = format!("list resources of stack {stack}");
        let depth = nested_depth.to_string();
        let query: &[(&str, &str)] = if nested_depth > 0 { &[("nested_depth", &depth)] } else { &[] };
        Ok(self
            .get::<types::ResourcesBody>(&op, &["stacks", &stack.name, &stack.id, "resources"], query)
            .await?
            .resources)
    }

    pub async fn show_resource(&self, stack: &StackRef, resource: &str) -> Result<Resource, CloudError> {
        let op = format!("show resource {resource} of stack {stack}");
        Ok(self
            .get::<types::ResourceBody>(&op, &["stacks", &stack.name, &stack.id, "resources", resource], &[])
            .await?
            .resource)
    }

    /// A resource's metadata (`GET .../resources/<name>/metadata`): where a
    /// scaling group and its policies keep `scaling_in_progress` and cooldowns.
    pub async fn resource_metadata(&self, stack: &StackRef, resource: &str) -> Result<serde_json::Value, CloudError> {
        let op = format!("show metadata of resource {resource} of stack {stack}");
        let body: serde_json::Value =
            self.get(&op, &["stacks", &stack.name, &stack.id, "resources", resource, "metadata"], &[]).await?;
        Ok(body.get("metadata").cloned().unwrap_or(serde_json::Value::Null))
    }

    /// The stack's template as Heat stores it (JSON).
    pub async fn template(&self, stack: &StackRef) -> Result<serde_json::Value, CloudError> {
        let op = format!("show template of stack {stack}");
        self.get(&op, &["stacks", &stack.name, &stack.id, "template"], &[]).await
    }

    /// The stack's environment as Heat stores it (`GET .../environment`): the
    /// resource registry and the parameters it was last given. Heat masks
    /// hidden parameters as `******`.
    pub async fn environment(&self, stack: &StackRef) -> Result<serde_json::Value, CloudError> {
        let op = format!("show environment of stack {stack}");
        self.get(&op, &["stacks", &stack.name, &stack.id, "environment"], &[]).await
    }

    /// The files the stack's template refers to (nested templates), by name.
    pub async fn files(&self, stack: &StackRef) -> Result<serde_json::Map<String, serde_json::Value>, CloudError> {
        let op = format!("show files of stack {stack}");
        self.get(&op, &["stacks", &stack.name, &stack.id, "files"], &[]).await
    }

    /// Previews creating a stack (`POST /stacks/preview`): Heat parses and
    /// validates everything and resolves each resource as it would create it,
    /// creating nothing. Nested stacks come back as nested lists.
    pub async fn preview_stack(&self, new: &NewStack) -> Result<serde_json::Value, CloudError> {
        let op = format!("preview stack {}", new.name);
        let url = self.url(&["stacks", "preview"], &[]).await?;
        let mut body = stack_body(new);
        body["stack_name"] = json!(new.name);
        let bytes = self.cloud.call(&op, Method::POST, &url, Some(&body), true).await?;
        parse(&op, &bytes)
    }

    /// Updates a stack keeping its template and environment (`PATCH`, Heat's
    /// "existing" update) with the given parameters changed.
    ///
    /// Sent once. When the answer is lost (timeout, connection reset), Heat may
    /// have accepted the update; the stack is read back and the update counts as
    /// accepted if Heat already holds the new values.
    pub async fn update_parameters(
        &self,
        stack: &StackRef,
        parameters: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), CloudError> {
        let op = format!("update stack {stack}");
        let url = self.url(&["stacks", &stack.name, &stack.id], &[]).await?;
        let body = json!({ "parameters": parameters });
        match self.cloud.call(&op, Method::PATCH, &url, Some(&body), false).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "{op}: answer lost; reading the stack back to see whether Heat took it");
                let now = self.show_stack(&stack.id, false).await?;
                let applied = parameters.iter().all(|(k, v)| now.parameter(k).as_deref() == Some(&parameter_text(v)));
                if applied { Ok(()) } else { Err(e) }
            }
            Err(e) => Err(e),
        }
    }

    /// Sends a signal to a resource (an `OS::Heat::ScalingPolicy` adjusts its group).
    /// Not retried: a repeated signal would scale twice.
    pub async fn signal(
        &self,
        stack: &StackRef,
        resource: &str,
        details: Option<&serde_json::Value>,
    ) -> Result<(), CloudError> {
        let op = format!("signal resource {resource} of stack {stack}");
        let url = self.url(&["stacks", &stack.name, &stack.id, "resources", resource, "signal"], &[]).await?;
        let empty = json!({});
        self.cloud.call(&op, Method::POST, &url, Some(details.unwrap_or(&empty)), false).await.map(|_| ())
    }

    /// Marks a resource unhealthy (`CHECK_FAILED`), so the next update of its
    /// group removes or replaces it first. Idempotent, hence retried.
    pub async fn mark_unhealthy(&self, stack: &StackRef, resource: &str, reason: &str) -> Result<(), CloudError> {
        let op = format!("mark resource {resource} of stack {stack} unhealthy");
        let url = self.url(&["stacks", &stack.name, &stack.id, "resources", resource], &[]).await?;
        let body = json!({ "mark_unhealthy": true, "resource_status_reason": reason });
        self.cloud.call(&op, Method::PATCH, &url, Some(&body), true).await.map(|_| ())
    }

    /// Polls until the stack is no longer `*_IN_PROGRESS`, and returns it
    /// (`*_COMPLETE` or `*_FAILED`: the caller decides what a failure means).
    pub async fn wait_settled(&self, stack: &StackRef, timeout: Duration) -> Result<Stack, CloudError> {
        let deadline = Instant::now() + timeout;
        let mut interval = Duration::from_millis(250);
        loop {
            let now = self.show_stack(&stack.id, false).await?;
            if !now.in_progress() {
                return Ok(now);
            }
            if Instant::now() + interval > deadline {
                return Err(CloudError::Timeout { op: format!("wait for stack {stack} to settle"), timeout });
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 3 / 2).min(Duration::from_secs(3));
        }
    }

    /// Validates a template (and its environment and files) without creating anything.
    pub async fn validate_template(&self, new: &NewStack) -> Result<serde_json::Value, CloudError> {
        let op = "validate template".to_string();
        let url = self.url(&["validate"], &[]).await?;
        let body = stack_body(new);
        let bytes = self.cloud.call(&op, Method::POST, &url, Some(&body), true).await?;
        parse(&op, &bytes)
    }

    pub async fn create_stack(&self, new: &NewStack) -> Result<StackRef, CloudError> {
        let op = format!("create stack {}", new.name);
        let url = self.url(&["stacks"], &[]).await?;
        let mut body = stack_body(new);
        body["stack_name"] = json!(new.name);
        if let Some(t) = new.timeout_mins {
            body["timeout_mins"] = json!(t);
        }
        let bytes = self.cloud.call(&op, Method::POST, &url, Some(&body), false).await?;
        let v: serde_json::Value = parse(&op, &bytes)?;
        let id = v
            .pointer("/stack/id")
            .and_then(|i| i.as_str())
            .ok_or_else(|| CloudError::BadResponse { op: op.clone(), detail: "no stack.id in the answer".into() })?;
        Ok(StackRef { name: new.name.clone(), id: id.to_string() })
    }

    pub async fn delete_stack(&self, stack: &StackRef) -> Result<(), CloudError> {
        let op = format!("delete stack {stack}");
        let url = self.url(&["stacks", &stack.name, &stack.id], &[]).await?;
        match self.cloud.call(&op, Method::DELETE, &url, None, true).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn stack_body(new: &NewStack) -> serde_json::Value {
    let files: serde_json::Map<_, _> = new.files.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    json!({
        "template": new.template,
        "files": files,
        "environment": new.environment.clone().unwrap_or_else(|| json!({})),
        "parameters": new.parameters,
    })
}

/// How Heat shows a parameter value we sent: lists comma-joined, numbers as text.
pub(crate) fn parameter_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items.iter().map(parameter_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn parse<T: DeserializeOwned>(op: &str, body: &[u8]) -> Result<T, CloudError> {
    serde_json::from_slice(body).map_err(|e| CloudError::BadResponse { op: op.to_string(), detail: e.to_string() })
}
