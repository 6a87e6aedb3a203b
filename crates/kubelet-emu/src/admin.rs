//! The binary's admin API: plain HTTP on the loopback, JSON bodies. What a
//! test harness in another process (or a developer with curl) does to the
//! emulated nodes:
//!
//! | request | effect |
//! | --- | --- |
//! | `GET /nodes` | the nodes, their addresses, whether their kubelet runs |
//! | `POST /nodes` + a [`NodeSpec`] | a new node registers (201 with its address) |
//! | `POST /nodes/{n}/kubelet/stop` | the kubelet stops |
//! | `POST /nodes/{n}/kubelet/start` | the kubelet starts again |
//! | `POST /nodes/{n}/vm-deleted` | the VM is gone; the Node object stays |
//! | `DELETE /nodes/{n}/object` | the cloud controller deletes the Node object |
//! | `DELETE /nodes/{n}` | both |
//! | `PUT /usage` `{"target":…,"model":…}` | a usage model ([`UsageTarget`], [`UsageModel`]) |
//! | `DELETE /usage` | every model removed |
//! | `GET /healthz` | `ok` |

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

use crate::{Emulator, NodeSpec, UsageModel, UsageTarget};

#[derive(Deserialize)]
struct SetUsage {
    target: UsageTarget,
    model: UsageModel,
}

/// Serves the admin API until the task is dropped.
pub async fn serve(emulator: Arc<Emulator>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let emulator = emulator.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let emulator = emulator.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&emulator, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

fn outcome(result: anyhow::Result<()>) -> Response<Full<Bytes>> {
    match result {
        Ok(()) => reply(StatusCode::OK, json!({"ok": true})),
        Err(e) => reply(StatusCode::UNPROCESSABLE_ENTITY, json!({"error": format!("{e:#}")})),
    }
}

async fn handle(emulator: &Emulator, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path: Vec<String> = req.uri().path().split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
    };
    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
    match (method, segments.as_slice()) {
        (Method::GET, ["healthz"]) => reply(StatusCode::OK, json!("ok")),
        (Method::GET, ["nodes"]) => reply(StatusCode::OK, json!(emulator.nodes())),
        (Method::POST, ["nodes"]) => match serde_json::from_slice::<NodeSpec>(&body) {
            Ok(spec) => {
                let name = spec.name.clone();
                match emulator.add_node(spec).await {
                    Ok(ip) => reply(StatusCode::CREATED, json!({"name": name, "ip": ip})),
                    Err(e) => reply(StatusCode::UNPROCESSABLE_ENTITY, json!({"error": format!("{e:#}")})),
                }
            }
            Err(e) => reply(StatusCode::BAD_REQUEST, json!({"error": format!("node spec: {e}")})),
        },
        (Method::POST, ["nodes", name, "kubelet", "stop"]) => outcome(emulator.stop_kubelet(name)),
        (Method::POST, ["nodes", name, "kubelet", "start"]) => outcome(emulator.start_kubelet(name).await),
        (Method::POST, ["nodes", name, "vm-deleted"]) => outcome(emulator.vm_deleted(name)),
        (Method::DELETE, ["nodes", name, "object"]) => outcome(emulator.cloud_delete_node(name).await),
        (Method::DELETE, ["nodes", name]) => outcome(emulator.remove_node(name).await),
        (Method::PUT, ["usage"]) => match serde_json::from_slice::<SetUsage>(&body) {
            Ok(u) => outcome(emulator.set_usage(u.target, u.model)),
            Err(e) => reply(StatusCode::BAD_REQUEST, json!({"error": format!("usage: {e}")})),
        },
        (Method::DELETE, ["usage"]) => {
            emulator.clear_usage();
            reply(StatusCode::OK, json!({"ok": true}))
        }
        _ => reply(StatusCode::NOT_FOUND, json!({"error": "no such admin endpoint"})),
    }
}
