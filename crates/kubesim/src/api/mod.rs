//! The HTTP API: hyper HTTP/1.1 server, routing, fault injection, and the
//! kubesim admin endpoints under `/kubesim/`.

mod admin;
mod discovery;
mod handlers;
pub mod lists;
mod request;
mod respond;
pub mod table;
mod watch;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch as tokio_watch;

use crate::error::ApiError;
use crate::sim::Sim;

pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub(crate) fn respond_json(code: u16, value: &serde_json::Value) -> Response<Body> {
    respond::json(code, value)
}

pub(crate) fn respond_text(code: u16, text: impl Into<Bytes>) -> Response<Body> {
    respond::bytes(code, "text/plain; version=0.0.4; charset=utf-8", text)
}

/// Accepts connections until `shutdown` flips; open connections (watches
/// included) are closed then too.
pub async fn serve(sim: Arc<Sim>, listener: TcpListener, shutdown: tokio_watch::Receiver<bool>) {
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let address: Arc<str> = Arc::from(address);
    loop {
        let mut stop = shutdown.clone();
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let sim = sim.clone();
        let address = address.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let sim = sim.clone();
                let address = address.clone();
                async move { Ok::<_, Infallible>(handle(sim, &address, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    }
}

/// The Kubernetes verb of a request, as audit logs and fault rules name it.
fn verb(method: &Method, path: &str, query: &request::Query) -> &'static str {
    let named = {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        // /api/v1/<res>/<name> or /api/v1/namespaces/<ns>/<res>/<name>[...]
        let rest = match segments.as_slice() {
            ["api", _, rest @ ..] => rest,
            ["apis", _, _, rest @ ..] => rest,
            _ => &[][..],
        };
        match rest {
            ["namespaces", _, _, _, ..] => true,
            ["namespaces", _, ..] => rest.len() == 2,
            [_, _, ..] => true,
            _ => false,
        }
    };
    match *method {
        Method::GET if query.flag("watch") => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
}

async fn handle(sim: Arc<Sim>, address: &str, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = request::Query::parse(req.uri().query());
    let method = req.method().clone();
    let headers = req.headers().clone();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return respond::error(&ApiError::bad_request(format!("reading the request body: {e}"))),
    };
    if let Some(admin_path) = path.strip_prefix("/kubesim/") {
        return admin::handle(&sim, &method, admin_path, &body).await;
    }
    let verb = verb(&method, &path, &query);
    let decision = sim.faults.decide(verb, &path);
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    if let Some(e) = decision.error {
        tracing::debug!(%method, %path, code = e.code, "kubesim: injected fault");
        return respond::error(&e);
    }
    let response = route(&sim, address, &method, &path, query, &headers, body).await;
    let response = response.unwrap_or_else(|e| respond::error(&e));
    tracing::trace!(%method, %path, status = response.status().as_u16(), "kubesim request");
    response
}

async fn route(
    sim: &Arc<Sim>,
    address: &str,
    method: &Method,
    path: &str,
    query: request::Query,
    headers: &http::HeaderMap,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let get_only = |value: serde_json::Value| {
        if *method == Method::GET { Ok(respond::json(200, &value)) } else { Err(ApiError::method_not_allowed()) }
    };
    let not_found = || ApiError::new(404, "NotFound", "the server could not find the requested resource");
    match segments.as_slice() {
        [] => get_only(discovery::root_paths()),
        ["version"] => get_only(discovery::version(&sim.options.kubernetes_version)),
        ["healthz" | "livez" | "readyz", ..] => Ok(respond::text(200, "ok")),
        ["api"] => get_only(discovery::core_versions(address)),
        ["api", "v1"] => get_only(discovery::resource_list("", "v1").ok_or_else(not_found)?),
        ["apis"] => get_only(discovery::group_list()),
        ["apis", group] => get_only(discovery::api_group(group).ok_or_else(not_found)?),
        ["apis", group, version] => get_only(discovery::resource_list(group, version).ok_or_else(not_found)?),
        ["openapi", "v3"] => get_only(discovery::openapi_v3_root()),
        ["openapi", "v3", "api", version] => {
            get_only(discovery::openapi_v3_group_version("", version).ok_or_else(not_found)?)
        }
        ["openapi", "v3", "apis", group, version] => {
            get_only(discovery::openapi_v3_group_version(group, version).ok_or_else(not_found)?)
        }
        ["api", "v1", rest @ ..] => {
            let target = request::resolve("", "v1", rest)?;
            handlers::resource(sim, method, target, &query, headers, body).await
        }
        ["apis", group, version, rest @ ..] => {
            let target = request::resolve(group, version, rest)?;
            handlers::resource(sim, method, target, &query, headers, body).await
        }
        _ => Err(not_found()),
    }
}
