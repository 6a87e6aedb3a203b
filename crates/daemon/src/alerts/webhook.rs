//! A generic JSON webhook, optionally signed with HMAC-SHA256.
//!
//! Body (`Content-Type: application/json`):
//!
//! ```json
//! {"version":"heatscaler.alert/v1","id":"<event id>","sent_at":1717236000,
//!  "event":{"id":"...","reason":"DrainFailed","severity":"warning","object":{...},
//!           "group":"workers","message":"...","fields":{...},"time":"2024-06-01T10:00:00Z"}}
//! ```
//!
//! Headers: `X-Heatscaler-Delivery: <id>`, `X-Heatscaler-Timestamp: <sent_at>`
//! and, with an `hmac-secret`, `X-Heatscaler-Signature: sha256=<hex>` — the
//! lowercase hex HMAC-SHA256 of the exact body bytes under the shared key.
//!
//! How a receiver verifies (see [`verify`], which does exactly this):
//! 1. compute HMAC-SHA256(key, raw body bytes) *before* parsing, and compare
//!    with the header in constant time; reject on mismatch;
//! 2. parse the body; reject unless `sent_at` equals `X-Heatscaler-Timestamp`
//!    and lies within a tolerance (5 minutes) of the receiver's clock — the
//!    timestamp is inside the signed body, so it cannot be altered, and a
//!    captured request stops being accepted after the tolerance;
//! 3. within the tolerance, reject an `id` already seen (a replay, or a retry
//!    of a delivery that did arrive: retries re-sign with a fresh `sent_at`
//!    but keep the `id`).

use std::time::Duration;

use futures::future::BoxFuture;
use hmac::{KeyInit, Mac};
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::http;
use super::{EventSink, ScalingEvent, SinkError};
use heatscaler_core::model::Timestamp;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

pub const SIGNATURE_HEADER: &str = "x-heatscaler-signature";
pub const TIMESTAMP_HEADER: &str = "x-heatscaler-timestamp";
pub const DELIVERY_HEADER: &str = "x-heatscaler-delivery";
pub const PAYLOAD_VERSION: &str = "heatscaler.alert/v1";

pub struct WebhookSink {
    url: Url,
    hmac_key: Option<SecretString>,
    client: reqwest::Client,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink").field("signed", &self.hmac_key.is_some()).finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    version: &'static str,
    id: &'a str,
    sent_at: i64,
    event: &'a ScalingEvent,
}

impl WebhookSink {
    pub fn new(url: Url, hmac_key: Option<SecretString>) -> Self {
        Self { url, hmac_key, client: http::client() }
    }

    fn request(&self, event: &ScalingEvent, now: Timestamp) -> (Vec<u8>, HeaderMap) {
        let sent_at = now.as_second();
        let body = serde_json::to_vec(&Envelope { version: PAYLOAD_VERSION, id: &event.id, sent_at, event })
            .expect("event serializes");
        let mut headers = HeaderMap::new();
        let value = |s: String| HeaderValue::from_str(&s).expect("ASCII header value");
        headers.insert(HeaderName::from_static(DELIVERY_HEADER), value(event.id.clone()));
        headers.insert(HeaderName::from_static(TIMESTAMP_HEADER), value(sent_at.to_string()));
        if let Some(key) = &self.hmac_key {
            headers.insert(HeaderName::from_static(SIGNATURE_HEADER), value(signature(key, &body)));
        }
        (body, headers)
    }
}

impl EventSink for WebhookSink {
    fn publish<'a>(&'a self, event: &'a ScalingEvent) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            // Built per attempt: a retry carries a fresh, freshly signed `sent_at`.
            let (body, headers) = self.request(event, Timestamp::now());
            http::post_json(&self.client, &self.url, body, headers).await
        })
    }
}

/// `sha256=<lowercase hex HMAC-SHA256(key, body)>`.
pub fn signature(key: &SecretString, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key.expose_secret().as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// Why [`verify`] rejected a delivery.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing or malformed X-Heatscaler-Signature")]
    MalformedSignature,
    #[error("signature does not match the body")]
    BadSignature,
    #[error("body is not a heatscaler alert: {0}")]
    BadBody(String),
    #[error("sent_at does not match X-Heatscaler-Timestamp")]
    TimestampMismatch,
    #[error("sent_at is {0}s away from now, beyond the tolerance")]
    Stale(i64),
}

/// What a verified delivery says, for the receiver's replay check on `id`.
#[derive(Debug, Deserialize)]
pub struct VerifiedDelivery {
    pub version: String,
    pub id: String,
    pub sent_at: i64,
    pub event: serde_json::Value,
}

/// The receiver side of the signature scheme, steps 1 and 2 of the module
/// documentation; step 3 (remembering `id`s for `tolerance`) is the caller's.
pub fn verify(
    key: &SecretString,
    body: &[u8],
    signature_header: &str,
    timestamp_header: &str,
    now: Timestamp,
    tolerance: Duration,
) -> Result<VerifiedDelivery, VerifyError> {
    let given =
        signature_header.trim().strip_prefix("sha256=").and_then(unhex).ok_or(VerifyError::MalformedSignature)?;
    let mut mac = HmacSha256::new_from_slice(key.expose_secret().as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| VerifyError::BadSignature)?;
    let delivery: VerifiedDelivery = serde_json::from_slice(body).map_err(|e| VerifyError::BadBody(e.to_string()))?;
    if timestamp_header.trim().parse::<i64>().ok() != Some(delivery.sent_at) {
        return Err(VerifyError::TimestampMismatch);
    }
    let skew = now.as_second() - delivery.sent_at;
    if skew.unsigned_abs() > tolerance.as_secs() {
        return Err(VerifyError::Stale(skew));
    }
    Ok(delivery)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretString {
        SecretString::from("k3y-material")
    }

    #[test]
    fn signed_request_verifies_and_tampering_fails() {
        let sink = WebhookSink::new(Url::parse("http://127.0.0.1:1/").unwrap(), Some(key()));
        let event = ScalingEvent::scaled_up_group("workers", 1, 2, 3);
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let (body, headers) = sink.request(&event, now);
        let sig = headers[SIGNATURE_HEADER].to_str().unwrap();
        let ts = headers[TIMESTAMP_HEADER].to_str().unwrap();
        let tol = Duration::from_secs(300);

        let ok = verify(&key(), &body, sig, ts, now, tol).unwrap();
        assert_eq!(ok.id, event.id);
        assert_eq!(ok.event["reason"], "ScaledUpGroup");

        let mut tampered = body.clone();
        let last = tampered.len() - 2;
        tampered[last] ^= 1;
        assert_eq!(verify(&key(), &tampered, sig, ts, now, tol).unwrap_err(), VerifyError::BadSignature);
        assert_eq!(
            verify(&SecretString::from("other"), &body, sig, ts, now, tol).unwrap_err(),
            VerifyError::BadSignature
        );
        assert_eq!(verify(&key(), &body, sig, "1700000001", now, tol).unwrap_err(), VerifyError::TimestampMismatch);
        let later = Timestamp::from_second(1_700_000_301).unwrap();
        assert_eq!(verify(&key(), &body, sig, ts, later, tol).unwrap_err(), VerifyError::Stale(301));
        assert_eq!(verify(&key(), &body, "sha1=00", ts, now, tol).unwrap_err(), VerifyError::MalformedSignature);
    }

    #[test]
    fn unsigned_sink_sends_no_signature_and_debug_hides_the_key() {
        let sink = WebhookSink::new(Url::parse("http://127.0.0.1:1/").unwrap(), None);
        let (_, headers) = sink.request(&ScalingEvent::scaled_up_group("g", 1, 2, 1), Timestamp::now());
        assert!(!headers.contains_key(SIGNATURE_HEADER));
        let signed = WebhookSink::new(Url::parse("http://127.0.0.1:1/").unwrap(), Some(key()));
        assert!(!format!("{signed:?}").contains("k3y"));
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00abff"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }
}
