//! The admin API under `/kubesim/`, for controlling a kubesim started as a
//! binary: nodes, usage models, faults. Never subject to fault injection.
//!
//! - `POST   /kubesim/nodes`              body: NodeSpec JSON
//! - `DELETE /kubesim/nodes/{name}`
//! - `PUT    /kubesim/nodes/{name}/ready` body: `{"ready": false}`
//! - `PUT    /kubesim/usage`              body: `{"target": UsageTarget, "model": UsageModel}`
//! - `DELETE /kubesim/usage`
//! - `POST   /kubesim/faults`             body: FaultRule → `{"id": n}`
//! - `DELETE /kubesim/faults[/{id}]`
//! - `POST   /kubesim/watches/drop`, `POST /kubesim/watches/compact`
//! - `GET    /kubesim/healthz`

use http::{Method, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Body, respond};
use crate::error::ApiError;
use crate::faults::FaultRule;
use crate::harness::nodes::{self, NodeSpec};
use crate::sim::Sim;
use crate::usage::{UsageModel, UsageTarget};

#[derive(Deserialize)]
struct UsageRequest {
    target: UsageTarget,
    model: UsageModel,
}

#[derive(Deserialize)]
struct ReadyRequest {
    ready: bool,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("kubesim admin: invalid body: {e}")))
}

pub async fn handle(sim: &Sim, method: &Method, path: &str, body: &[u8]) -> Response<Body> {
    let result = route(sim, method, path, body);
    match result {
        Ok(value) => respond::json(200, &value),
        Err(e) => respond::error(&e),
    }
}

fn route(sim: &Sim, method: &Method, path: &str, body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.clone(), segments.as_slice()) {
        (Method::GET, ["healthz"]) => Ok(json!({"status": "ok"})),
        (Method::POST, ["nodes"]) => {
            let spec: NodeSpec = parse(body)?;
            let node = nodes::add_node(sim, &spec)?;
            Ok(node.value())
        }
        (Method::DELETE, ["nodes", name]) => {
            nodes::remove_node(sim, name)?;
            Ok(json!({"removed": name}))
        }
        (Method::PUT, ["nodes", name, "ready"]) => {
            let req: ReadyRequest = parse(body)?;
            nodes::set_node_ready(sim, name, req.ready)?;
            Ok(json!({"node": name, "ready": req.ready}))
        }
        (Method::PUT, ["usage"]) => {
            let req: UsageRequest = parse(body)?;
            sim.usage.set(req.target, req.model).map_err(ApiError::bad_request)?;
            Ok(json!({"status": "ok"}))
        }
        (Method::DELETE, ["usage"]) => {
            sim.usage.clear();
            Ok(json!({"status": "ok"}))
        }
        (Method::POST, ["faults"]) => {
            let rule: FaultRule = parse(body)?;
            Ok(json!({"id": sim.faults.add(rule)}))
        }
        (Method::DELETE, ["faults"]) => {
            sim.faults.clear();
            Ok(json!({"status": "ok"}))
        }
        (Method::DELETE, ["faults", id]) => {
            let id: u64 = id.parse().map_err(|_| ApiError::bad_request("fault id must be a number"))?;
            Ok(json!({"removed": sim.faults.remove(id)}))
        }
        (Method::POST, ["watches", "drop"]) => {
            sim.faults.drop_watches();
            Ok(json!({"status": "ok"}))
        }
        (Method::POST, ["watches", "compact"]) => {
            sim.store.compact();
            Ok(json!({"status": "ok", "resourceVersion": sim.store.current_rv().to_string()}))
        }
        _ => Err(ApiError::new(404, "NotFound", format!("kubesim admin: no route for {method} /kubesim/{path}"))),
    }
}
