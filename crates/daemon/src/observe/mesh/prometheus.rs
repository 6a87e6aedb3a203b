//! The Prometheus HTTP API's instant query (`GET /api/v1/query`), the one
//! call the mesh observer needs. reqwest, as the rest of the daemon's HTTP;
//! no Prometheus client crate is used because the maintained ones are for
//! exposing metrics, not for querying them, and an instant query is one GET
//! and a small JSON document.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::MeshMetricsConfig;

/// A result larger than this is refused: a mesh's per-pod series over a
/// window are a few MiB in a large cluster; more means a query gone wrong.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Connection refused, timeout, TLS: worth retrying.
    #[error("Prometheus not reached: {0}")]
    Unreachable(String),
    /// Prometheus answered with an error status (the message is its own).
    #[error("Prometheus answered {status}: {message}")]
    Refused { status: StatusCode, message: String },
    #[error("Prometheus's answer could not be read: {0}")]
    Decode(String),
    #[error("{0}")]
    Config(String),
}

impl QueryError {
    /// Whether the same query may succeed later (a 400 will not).
    pub fn retryable(&self) -> bool {
        match self {
            QueryError::Unreachable(_) | QueryError::Decode(_) => true,
            QueryError::Refused { status, .. } => status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS,
            QueryError::Config(_) => false,
        }
    }
}

/// One series of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A client of one Prometheus. The URL never reaches an error or a log line
/// (`without_url`): an operator may have put a token in a path segment.
pub struct Prometheus {
    http: reqwest::Client,
    query_url: Url,
    token: Option<SecretString>,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prometheus").finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: Vec<VectorItem>,
}

#[derive(Deserialize)]
struct VectorItem {
    metric: BTreeMap<String, String>,
    /// `[unix seconds, "value"]`: values are strings so `NaN`/`+Inf` survive JSON.
    value: (f64, String),
}

impl Prometheus {
    pub fn new(config: &MeshMetricsConfig) -> Result<Self, QueryError> {
        let base = Url::parse(&config.prometheus_url)
            .map_err(|e| QueryError::Config(format!("mesh-metrics.prometheus-url is not a URL ({e})")))?;
        let query_url = join_api(&base);
        let timeout: Duration = config.request_timeout.get();
        let mut http = reqwest::Client::builder()
            .user_agent(concat!("heatscaler/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // A redirect could carry the bearer token to another host.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &config.ca_bundle {
            let pem = crate::files::read_bounded(path, crate::files::MAX_CA_BUNDLE_BYTES)
                .map_err(|e| QueryError::Config(format!("cannot read CA bundle {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| QueryError::Config(format!("CA bundle {} is not PEM: {e}", path.display())))?;
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http.build().map_err(|e| QueryError::Config(format!("HTTP client: {e}")))?;
        let token = match &config.bearer_token {
            Some(source) => {
                Some(source.resolve().map_err(|e| QueryError::Config(format!("mesh-metrics.bearer-token: {e}")))?)
            }
            None => None,
        };
        Ok(Self { http, query_url, token })
    }

    /// Evaluates `promql` now; only instant vectors are accepted.
    pub async fn query(&self, promql: &str) -> Result<Vec<Sample>, QueryError> {
        let mut request = self.http.get(self.query_url.clone()).query(&[("query", promql)]);
        if let Some(token) = &self.token {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                .map_err(|_| QueryError::Config("mesh-metrics.bearer-token is not a valid header value".into()))?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let mut response = request.send().await.map_err(|e| QueryError::Unreachable(chain(&e.without_url())))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| QueryError::Unreachable(chain(&e.without_url())))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(QueryError::Decode(format!("answer larger than {MAX_BODY_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        let envelope: Result<Envelope, _> = serde_json::from_slice(&body);
        if !status.is_success() {
            let message = match envelope {
                Ok(Envelope { error: Some(e), error_type, .. }) => {
                    format!("{}: {e}", error_type.unwrap_or_else(|| "error".into()))
                }
                _ => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            };
            return Err(QueryError::Refused { status, message });
        }
        let envelope = envelope.map_err(|e| QueryError::Decode(e.to_string()))?;
        if envelope.status != "success" {
            return Err(QueryError::Decode(format!(
                "status `{}`: {}",
                envelope.status,
                envelope.error.unwrap_or_default()
            )));
        }
        let data = envelope.data.ok_or_else(|| QueryError::Decode("no `data`".into()))?;
        if data.result_type != "vector" {
            return Err(QueryError::Decode(format!("result type `{}`, not an instant vector", data.result_type)));
        }
        data.result
            .into_iter()
            .map(|item| {
                let value = parse_value(&item.value.1)
                    .ok_or_else(|| QueryError::Decode(format!("sample value `{}` is not a number", item.value.1)))?;
                Ok(Sample { labels: item.metric, value })
            })
            .collect()
    }
}

/// `<base>/api/v1/query`, keeping a path prefix (a Prometheus served under
/// `/prometheus/`, as behind many ingresses).
fn join_api(base: &Url) -> Url {
    let mut url = base.clone();
    let path = format!("{}/api/v1/query", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

/// Prometheus's sample values: decimal, `NaN`, `+Inf`, `-Inf`.
fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_path_keeps_a_prefix() {
        let u = |s: &str| join_api(&Url::parse(s).unwrap()).to_string();
        assert_eq!(u("http://prom:9090"), "http://prom:9090/api/v1/query");
        assert_eq!(u("https://h/prometheus/"), "https://h/prometheus/api/v1/query");
    }

    #[test]
    fn special_values_parse() {
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert!(parse_value("NaN").unwrap().is_nan());
        assert_eq!(parse_value("0.25"), Some(0.25));
        assert_eq!(parse_value("x"), None);
    }
}
