//! Response builders.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use super::Body;
use crate::error::ApiError;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

pub fn bytes(code: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    r
}

pub fn json_bytes(code: u16, body: impl Into<Bytes>) -> Response<Body> {
    bytes(code, "application/json", body)
}

pub fn json(code: u16, value: &Value) -> Response<Body> {
    json_bytes(code, serde_json::to_vec(value).expect("JSON values always serialise"))
}

pub fn error(e: &ApiError) -> Response<Body> {
    let mut r = json(e.code, &e.to_status());
    if let Some(s) = e.retry_after
        && let Ok(v) = HeaderValue::from_str(&s.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

pub fn text(code: u16, body: impl Into<Bytes>) -> Response<Body> {
    bytes(code, "text/plain; charset=utf-8", body)
}
