//! An authenticated connection to one OpenStack cloud.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use osauth::client::AuthenticatedClient;
use osauth::common::IdOrName;
use osauth::identity::{ApplicationCredential, Password, Scope, Token};
use osauth::{EndpointFilters, ErrorKind, InterfaceType};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};

use super::CloudError;
use super::clouds_yaml;
use super::error::describe;
use crate::config::{EndpointInterface, OpenStackConfig};

/// A Keystone session and the HTTP client every OpenStack request goes through.
///
/// osauth caches the token and renews it ten minutes before it expires; a token
/// that stops working earlier (revoked, Keystone restarted with new keys, clock
/// skew) makes the service answer 401, and [`Cloud::call`] then re-authenticates
/// once and repeats the request, which the service had not processed.
#[derive(Clone)]
pub struct Cloud {
    inner: Arc<Inner>,
}

struct Inner {
    /// Replaced whole on re-authentication (see [`Cloud::reauthenticate`]).
    client: RwLock<AuthenticatedClient>,
    identity: Identity,
    http: reqwest::Client,
    filters: EndpointFilters,
    auth_url: String,
    request_timeout: Duration,
}

// Never derive: the osauth client's Debug prints the password.
impl std::fmt::Debug for Cloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloud").field("auth_url", &self.inner.auth_url).finish_non_exhaustive()
    }
}

/// An osauth identity with an empty token cache, kept to start over from.
#[derive(Clone)]
enum Identity {
    Password(Password),
    ApplicationCredential(ApplicationCredential),
    /// A password identity osauth cannot express: ids, or a trust (see [`PasswordById`]).
    PasswordById(PasswordById),
}

impl Identity {
    async fn authenticate(&self, http: reqwest::Client) -> Result<AuthenticatedClient, osauth::Error> {
        // osauth identities are cloned with an empty token cache: this always asks Keystone.
        match self.clone() {
            Identity::Password(p) => AuthenticatedClient::new(http, p).await,
            Identity::ApplicationCredential(a) => AuthenticatedClient::new(http, a).await,
            Identity::PasswordById(p) => p.authenticate(http).await,
        }
    }
}

/// Password authentication naming the user or the domains by id, as
/// clouds.yaml and `OS_*` allow (`user_id`, `user_domain_id`,
/// `project_domain_id`): osauth's `Password` sends names only, so an id
/// would be taken for a name and refused (401). The password token is asked
/// for here, with the ids in the request; osauth's `Token` identity then
/// scopes it and keeps the catalog. When that token expires, the next request
/// fails to authenticate and [`Cloud`] asks for a new one from the password.
///
/// With a Keystone trust the request is scoped to the trust itself
/// (`OS-TRUST:trust`), and the answer is used as it is ([`TrustScopedToken`]):
/// Keystone refuses to make a new token from a trust-scoped one, which is what
/// osauth's `Token` identity would do.
#[derive(Clone)]
struct PasswordById {
    auth_url: String,
    user: IdOrName,
    /// Ignored by Keystone for a user given by id.
    user_domain: IdOrName,
    password: SecretString,
    project: Option<(IdOrName, IdOrName)>,
    trust: Option<String>,
}

fn id_or_name(v: &IdOrName) -> serde_json::Value {
    match v {
        IdOrName::Id(id) => serde_json::json!({ "id": id }),
        IdOrName::Name(name) => serde_json::json!({ "name": name }),
    }
}

impl PasswordById {
    /// Keystone's token endpoint for an auth URL with or without `/v3` (as osauth builds it).
    fn token_endpoint(&self) -> String {
        let base = self.auth_url.trim_end_matches('/');
        if base.ends_with("/v3") { format!("{base}/auth/tokens") } else { format!("{base}/v3/auth/tokens") }
    }

    fn project_scope(&self) -> Option<Scope> {
        self.project.clone().map(|(project, domain)| Scope::Project {
            domain: matches!(project, IdOrName::Name(_)).then_some(domain),
            project,
        })
    }

    async fn authenticate(self, http: reqwest::Client) -> Result<AuthenticatedClient, osauth::Error> {
        let mut user = id_or_name(&self.user);
        if matches!(self.user, IdOrName::Name(_)) {
            user["domain"] = id_or_name(&self.user_domain);
        }
        user["password"] = serde_json::Value::String(self.password.expose_secret().to_string());
        let mut body = serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}});
        if let Some(trust) = &self.trust {
            body["auth"]["scope"] = serde_json::json!({"OS-TRUST:trust": {"id": trust}});
        }
        let response = http.post(self.token_endpoint()).json(&body).send().await.map_err(|e| {
            let kind = if e.is_timeout() { ErrorKind::OperationTimedOut } else { ErrorKind::ProtocolError };
            osauth::Error::new(kind, describe(&e))
        })?;
        let status = response.status();
        let token = response.headers().get("x-subject-token").and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = response.bytes().await.unwrap_or_default();
        if !status.is_success() {
            let kind = match status {
                StatusCode::UNAUTHORIZED => ErrorKind::AuthenticationFailed,
                StatusCode::FORBIDDEN => ErrorKind::AccessDenied,
                _ => ErrorKind::InvalidResponse,
            };
            return Err(osauth::Error::new(kind, format!("HTTP {status}: {}", error_message(&bytes))));
        }
        let token = token.ok_or_else(|| {
            osauth::Error::new(ErrorKind::InvalidResponse, "Keystone answered without an X-Subject-Token header")
        })?;
        if self.trust.is_some() {
            let trust_scoped = TrustScopedToken::from_response(token.into(), &bytes)?;
            return AuthenticatedClient::new(http, trust_scoped).await;
        }
        let mut identity = Token::new(&self.auth_url, token)?;
        if let Some(scope) = self.project_scope() {
            identity.set_scope(scope);
        }
        AuthenticatedClient::new(http, identity).await
    }
}

/// How long before it expires a trust-scoped token is replaced (as osauth does for its own tokens).
const TRUST_TOKEN_RENEW_BEFORE: Duration = Duration::from_secs(600);

/// A trust-scoped token and its catalog, as Keystone issued them. It cannot
/// be renewed from itself: ten minutes before it expires it reports
/// `AuthenticationFailed`, and [`Cloud`] asks Keystone for a new one from the
/// trustee's password, as it does when any token is rejected.
struct TrustScopedToken {
    token: SecretString,
    renew_at: std::time::Instant,
    catalog: Vec<CatalogService>,
}

#[derive(serde::Deserialize)]
struct CatalogService {
    #[serde(rename = "type")]
    service_type: String,
    #[serde(default)]
    endpoints: Vec<CatalogEndpoint>,
}

#[derive(serde::Deserialize)]
struct CatalogEndpoint {
    interface: String,
    #[serde(default)]
    region: Option<String>,
    url: String,
}

#[derive(serde::Deserialize)]
struct TokenBody {
    token: TokenDetails,
}

#[derive(serde::Deserialize)]
struct TokenDetails {
    expires_at: jiff::Timestamp,
    #[serde(default)]
    catalog: Vec<CatalogService>,
}

// Never print the token.
impl std::fmt::Debug for TrustScopedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustScopedToken").field("renew_at", &self.renew_at).finish_non_exhaustive()
    }
}

impl TrustScopedToken {
    fn from_response(token: SecretString, body: &[u8]) -> Result<TrustScopedToken, osauth::Error> {
        let parsed: TokenBody = serde_json::from_slice(body).map_err(|e| {
            osauth::Error::new(ErrorKind::InvalidResponse, format!("Keystone's token response is not understood: {e}"))
        })?;
        let left = jiff::Timestamp::now().duration_until(parsed.token.expires_at);
        let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
        Ok(TrustScopedToken {
            token,
            renew_at: std::time::Instant::now() + left.saturating_sub(TRUST_TOKEN_RENEW_BEFORE),
            catalog: parsed.token.catalog,
        })
    }

    fn still_valid(&self) -> Result<(), osauth::Error> {
        if std::time::Instant::now() >= self.renew_at {
            return Err(osauth::Error::new(
                ErrorKind::AuthenticationFailed,
                "the trust-scoped token is about to expire and cannot renew itself",
            ));
        }
        Ok(())
    }

    /// The catalog URL as osauth picks it: the region if one is set, the first
    /// of the accepted interfaces that has an endpoint.
    fn find_endpoint(&self, service_type: &str, filters: &EndpointFilters) -> Result<Url, osauth::Error> {
        let not_found =
            || osauth::Error::new(ErrorKind::EndpointNotFound, format!("no {service_type} endpoint in the catalog"));
        let service = self.catalog.iter().find(|s| s.service_type == service_type).ok_or_else(not_found)?;
        let endpoint = service
            .endpoints
            .iter()
            .filter(|e| filters.region.as_ref().is_none_or(|r| e.region.as_ref() == Some(r)))
            .filter_map(|e| filters.interfaces.iter().position(|i| *i == e.interface).map(|rank| (rank, e)))
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, e)| e)
            .ok_or_else(not_found)?;
        Url::parse(&endpoint.url).map_err(|e| {
            osauth::Error::new(
                ErrorKind::InvalidResponse,
                format!("catalog URL {} for {service_type}: {e}", endpoint.url),
            )
        })
    }
}

#[async_trait::async_trait]
impl osauth::AuthType for TrustScopedToken {
    async fn authenticate(
        &self,
        _client: &reqwest::Client,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, osauth::Error> {
        self.still_valid()?;
        let mut value = reqwest::header::HeaderValue::from_str(self.token.expose_secret())
            .map_err(|_| osauth::Error::new(ErrorKind::InvalidResponse, "Keystone's token is not a header value"))?;
        value.set_sensitive(true);
        Ok(request.header("x-auth-token", value))
    }

    async fn get_endpoint(
        &self,
        _client: &reqwest::Client,
        service_type: &str,
        filters: &EndpointFilters,
    ) -> Result<Url, osauth::Error> {
        self.still_valid()?;
        self.find_endpoint(service_type, filters)
    }

    async fn refresh(&self, _client: &reqwest::Client) -> Result<(), osauth::Error> {
        self.still_valid()
    }
}

/// Who to authenticate as, resolved from the configuration or clouds.yaml.
enum Credentials {
    Password {
        user: IdOrName,
        user_domain: IdOrName,
        password: SecretString,
        project: Option<(IdOrName, IdOrName)>,
        trust: Option<String>,
    },
    ApplicationCredential {
        id: Option<String>,
        name: Option<String>,
        user_id: Option<String>,
        secret: SecretString,
    },
}

struct Settings {
    auth_url: String,
    credentials: Credentials,
    region: Option<String>,
    interface: Option<InterfaceType>,
    ca_bundle: Option<std::path::PathBuf>,
}

impl Cloud {
    /// Authenticates now, so a wrong password or an unreachable Keystone is
    /// reported at start-up rather than at the first scaling decision.
    pub async fn connect(config: &OpenStackConfig) -> Result<Cloud, CloudError> {
        let settings = settings(config)?;
        let timeout = config.request_timeout.get();
        let mut http =
            reqwest::Client::builder().timeout(timeout).connect_timeout(timeout.min(Duration::from_secs(10)));
        if let Some(path) = &settings.ca_bundle {
            let pem = crate::files::read_bounded(path, crate::files::MAX_CA_BUNDLE_BYTES)
                .map_err(|e| CloudError::Config(format!("cannot read CA bundle {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| CloudError::Config(format!("CA bundle {} is not PEM: {e}", path.display())))?;
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http.build().map_err(|e| CloudError::Config(format!("HTTP client: {}", describe(&e))))?;
        let auth_url = settings.auth_url.clone();
        let keystone_error = |e: osauth::Error| keystone_error(&auth_url, e);
        let identity = match settings.credentials {
            Credentials::Password {
                user: IdOrName::Name(user),
                user_domain: IdOrName::Name(domain),
                password,
                project,
                trust: None,
            } => {
                let mut auth = Password::new(&settings.auth_url, user, password.expose_secret(), domain)
                    .map_err(keystone_error)?;
                if let Some((project, domain)) = project {
                    auth.set_scope(Scope::Project { project, domain: Some(domain) });
                }
                Identity::Password(auth)
            }
            Credentials::Password { user, user_domain, password, project, trust } => {
                Identity::PasswordById(PasswordById {
                    auth_url: settings.auth_url.clone(),
                    user,
                    user_domain,
                    password,
                    project,
                    trust,
                })
            }
            Credentials::ApplicationCredential { id, name, user_id, secret } => {
                let auth = match (id, name, user_id) {
                    (Some(id), _, _) => ApplicationCredential::new(&settings.auth_url, id, secret.expose_secret()),
                    (None, Some(name), Some(user_id)) => {
                        ApplicationCredential::with_user_id(&settings.auth_url, name, secret.expose_secret(), user_id)
                    }
                    _ => {
                        return Err(CloudError::Config(
                            "an application credential needs its id, or its name with user-id (osauth cannot \
                             look a credential up by user name)"
                                .into(),
                        ));
                    }
                }
                .map_err(keystone_error)?;
                Identity::ApplicationCredential(auth)
            }
        };
        let client = identity.authenticate(http.clone()).await.map_err(keystone_error)?;
        let mut filters = EndpointFilters::default();
        if let Some(region) = settings.region {
            filters.set_region(region);
        }
        filters.set_interfaces(settings.interface.unwrap_or(InterfaceType::Public));
        tracing::debug!(auth_url = %settings.auth_url, "authenticated to Keystone");
        Ok(Cloud {
            inner: Arc::new(Inner {
                client: RwLock::new(client),
                identity,
                http,
                filters,
                auth_url: settings.auth_url,
                request_timeout: timeout,
            }),
        })
    }

    pub fn auth_url(&self) -> &str {
        &self.inner.auth_url
    }

    pub fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    /// The catalog URL of a service (`orchestration` for Heat) for the configured
    /// region and interface. Renews the token first when it is about to expire, so
    /// Keystone trouble surfaces here, as a Keystone error, before the service is called.
    pub async fn endpoint(&self, service_type: &str) -> Result<Url, CloudError> {
        let found = match self.client().get_endpoint(service_type, &self.inner.filters).await {
            // As in `call_once`: a token that cannot be renewed is replaced once.
            Err(e) if e.kind() == ErrorKind::AuthenticationFailed => {
                self.reauthenticate().await?;
                self.client().get_endpoint(service_type, &self.inner.filters).await
            }
            other => other,
        };
        found.map_err(|e| match e.kind() {
            ErrorKind::EndpointNotFound => CloudError::NoEndpoint {
                service: service_type.to_string(),
                filters: format!(
                    "region {}, interface {:?}",
                    self.inner.filters.region.as_deref().unwrap_or("any"),
                    self.inner.filters.interfaces
                ),
                message: e.to_string(),
            },
            _ => keystone_error(&self.inner.auth_url, e),
        })
    }

    /// Sends one request and returns the response body of a 2xx answer.
    ///
    /// `idempotent` requests (reads, marking a resource unhealthy) are retried
    /// with backoff on transient failures; others are sent once, because a
    /// timed-out update may still have been accepted and the caller must look
    /// before trying again.
    pub async fn call(
        &self,
        op: &str,
        method: Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        idempotent: bool,
    ) -> Result<Vec<u8>, CloudError> {
        let once = || self.call_once(op, method.clone(), url, body);
        if idempotent {
            once.retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(5))
                    .with_max_times(4)
                    .with_jitter(),
            )
            .when(CloudError::is_transient)
            .notify(|e, delay| tracing::warn!(error = %e, retry_in = ?delay, "OpenStack request failed; retrying"))
            .await
        } else {
            once().await
        }
    }

    async fn call_once(
        &self,
        op: &str,
        method: Method,
        url: &Url,
        body: Option<&serde_json::Value>,
    ) -> Result<Vec<u8>, CloudError> {
        let mut reauthenticated = false;
        loop {
            let mut request = self.client().request(method.clone(), url.clone());
            if let Some(body) = body {
                request = request.json(body);
            }
            tracing::debug!(%method, %url, "{op}");
            let response = match request.send_unchecked().await {
                Ok(r) => r,
                // The cached token could not be renewed (it expired: a token
                // identity cannot renew itself): start over once from the credential.
                Err(e) if e.kind() == ErrorKind::AuthenticationFailed && !reauthenticated => {
                    tracing::debug!(%url, "{op}: token renewal failed; re-authenticating with Keystone");
                    self.reauthenticate().await?;
                    reauthenticated = true;
                    continue;
                }
                Err(e) => return Err(self.send_error(op, url, e)),
            };
            let status = response.status();
            let bytes = response.bytes().await.map_err(|e| self.transport_error(op, url, &e))?;
            if status.is_success() {
                return Ok(bytes.to_vec());
            }
            if status == StatusCode::UNAUTHORIZED && !reauthenticated {
                // The service did not process a request it could not authenticate.
                tracing::debug!(%url, "{op}: token rejected (HTTP 401); re-authenticating with Keystone");
                self.reauthenticate().await?;
                reauthenticated = true;
                continue;
            }
            return Err(status_error(op, status, &bytes));
        }
    }

    fn client(&self) -> AuthenticatedClient {
        self.inner.client.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Discards the cached token and authenticates again, for every clone of
    /// this `Cloud`. (osauth's own forced refresh keeps a token it still
    /// believes valid, so a fresh client replaces the old one instead.)
    pub async fn reauthenticate(&self) -> Result<(), CloudError> {
        let fresh = self
            .inner
            .identity
            .authenticate(self.inner.http.clone())
            .await
            .map_err(|e| keystone_error(&self.inner.auth_url, e))?;
        *self.inner.client.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    fn send_error(&self, op: &str, url: &Url, e: osauth::Error) -> CloudError {
        match e.kind() {
            // The token was fetched (and failed) before anything reached the service.
            ErrorKind::AuthenticationFailed | ErrorKind::AccessDenied | ErrorKind::InvalidConfig => {
                keystone_error(&self.inner.auth_url, e)
            }
            ErrorKind::OperationTimedOut => {
                CloudError::Timeout { op: op.to_string(), timeout: self.inner.request_timeout }
            }
            _ => CloudError::Unreachable { op: op.to_string(), url: url.to_string(), detail: e.to_string() },
        }
    }

    fn transport_error(&self, op: &str, url: &Url, e: &reqwest::Error) -> CloudError {
        if e.is_timeout() {
            CloudError::Timeout { op: op.to_string(), timeout: self.inner.request_timeout }
        } else {
            CloudError::Unreachable { op: op.to_string(), url: url.to_string(), detail: describe(e) }
        }
    }
}

fn keystone_error(auth_url: &str, e: osauth::Error) -> CloudError {
    let message = e.to_string();
    match e.kind() {
        ErrorKind::AuthenticationFailed => CloudError::AuthFailed { auth_url: auth_url.into(), status: 401, message },
        ErrorKind::AccessDenied => CloudError::AuthFailed { auth_url: auth_url.into(), status: 403, message },
        ErrorKind::ProtocolError | ErrorKind::OperationTimedOut => {
            CloudError::KeystoneUnreachable { auth_url: auth_url.into(), detail: message }
        }
        ErrorKind::InvalidConfig | ErrorKind::InvalidInput => CloudError::Config(message),
        _ => CloudError::Keystone { auth_url: auth_url.into(), message },
    }
}

/// Heat's error body: `{"error": {"message": ..., "type": ...}, "explanation": ..., "title": ...}`.
fn status_error(op: &str, status: StatusCode, body: &[u8]) -> CloudError {
    let message = error_message(body);
    let op = op.to_string();
    match status.as_u16() {
        400 => CloudError::BadRequest { op, message },
        401 | 403 => CloudError::Unauthorized { op, status: status.as_u16(), message },
        404 => CloudError::NotFound { op, message },
        409 => CloudError::Conflict { op, message },
        s @ 500..=599 => CloudError::Server { op, status: s, message },
        s => CloudError::Unexpected { op, status: s, message },
    }
}

fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let pick = |p: &str| v.pointer(p).and_then(|m| m.as_str()).filter(|m| !m.is_empty()).map(str::to_string);
        if let Some(m) = pick("/error/message").or_else(|| pick("/explanation")).or_else(|| pick("/title")) {
            let kind = pick("/error/type").map(|t| format!(" [{t}]")).unwrap_or_default();
            return format!("{}{kind}", m.trim());
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() > 300 {
        format!("{}…", text.chars().take(300).collect::<String>())
    } else {
        text.to_string()
    }
}

fn settings(config: &OpenStackConfig) -> Result<Settings, CloudError> {
    let interface = config.interface.map(|i| match i {
        EndpointInterface::Public => InterfaceType::Public,
        EndpointInterface::Internal => InterfaceType::Internal,
        EndpointInterface::Admin => InterfaceType::Admin,
    });
    if let Some(name) = &config.cloud {
        let entry = clouds_yaml::load(name, config.clouds_yaml.as_deref())?;
        return from_cloud_entry(name, entry, config, interface);
    }
    if config.auth_url.is_none() {
        // As openstacksdk without arguments: OS_CLOUD, else the OS_* variables.
        let (name, entry) = clouds_yaml::from_environment(config.clouds_yaml.as_deref())?;
        return from_cloud_entry(&name, entry, config, interface);
    }
    let auth_url = config
        .auth_url
        .clone()
        .ok_or_else(|| CloudError::Config("set `cloud` or `auth-url` in the openstack section".into()))?;
    let secret = |s: &crate::config::SecretSource| s.resolve().map_err(|e| CloudError::Config(e.to_string()));
    let credentials = match (&config.application_credential, &config.password) {
        (Some(ac), None) => Credentials::ApplicationCredential {
            id: ac.id.clone(),
            name: ac.name.clone(),
            user_id: ac.user_id.clone(),
            secret: secret(&ac.secret)?,
        },
        (None, Some(pw)) => Credentials::Password {
            user: IdOrName::Name(pw.username.clone()),
            user_domain: IdOrName::Name(pw.user_domain_name.clone()),
            password: secret(&pw.password)?,
            project: pw
                .project_id
                .clone()
                .map(IdOrName::Id)
                .or_else(|| pw.project_name.clone().map(IdOrName::Name))
                .map(|p| (p, IdOrName::Name(pw.project_domain_name.clone()))),
            trust: pw.trust_id.clone(),
        },
        _ => return Err(CloudError::Config("set exactly one of application-credential or password".into())),
    };
    Ok(Settings {
        auth_url,
        credentials,
        region: config.region.clone(),
        interface,
        ca_bundle: config.ca_bundle.clone(),
    })
}

fn from_cloud_entry(
    name: &str,
    entry: clouds_yaml::CloudEntry,
    config: &OpenStackConfig,
    interface: Option<InterfaceType>,
) -> Result<Settings, CloudError> {
    if matches!(entry.verify, Some(serde_json::Value::Bool(false))) {
        return Err(CloudError::Config(format!(
            "cloud '{name}' sets `verify: false`; heatscaler always verifies TLS (give the CA with `cacert` or ca-bundle)"
        )));
    }
    let a = entry.auth;
    if a.trust_id.is_some() && (a.project_id.is_some() || a.project_name.is_some()) {
        // As keystoneauth: a token has one scope, and a trust's is the trustor's project.
        return Err(CloudError::Config(format!(
            "cloud '{name}' sets both trust_id and a project; a trust is scoped to its project already, drop the project"
        )));
    }
    let auth_url = a.auth_url.ok_or_else(|| CloudError::Config(format!("cloud '{name}' has no auth.auth_url")))?;
    let auth_type = entry.auth_type.as_deref().unwrap_or("password");
    let credentials = match auth_type {
        "password" | "v3password" => Credentials::Password {
            user: match (a.username, a.user_id) {
                (Some(n), _) => IdOrName::Name(n),
                (None, Some(id)) => IdOrName::Id(id),
                _ => return Err(CloudError::Config(format!("cloud '{name}' has no auth.username"))),
            },
            // An id is an id (`default`), never sent as a name (`Default`).
            user_domain: a
                .user_domain_id
                .map(IdOrName::Id)
                .or_else(|| a.user_domain_name.map(IdOrName::Name))
                .unwrap_or_else(|| IdOrName::Name("Default".into())),
            password: a.password.ok_or_else(|| CloudError::Config(format!("cloud '{name}' has no auth.password")))?,
            project: a.project_id.map(IdOrName::Id).or_else(|| a.project_name.map(IdOrName::Name)).map(|p| {
                let domain = a
                    .project_domain_id
                    .map(IdOrName::Id)
                    .or_else(|| a.project_domain_name.map(IdOrName::Name))
                    .unwrap_or_else(|| IdOrName::Name("Default".into()));
                (p, domain)
            }),
            trust: a.trust_id,
        },
        // Keystone scopes an application credential's token to the credential's own project.
        "v3applicationcredential" if a.trust_id.is_some() => {
            return Err(CloudError::Config(format!(
                "cloud '{name}' sets trust_id with an application credential; Keystone does not scope an \
                 application credential to a trust: authenticate as the trustee with a password"
            )));
        }
        "v3applicationcredential" => Credentials::ApplicationCredential {
            id: a.application_credential_id,
            name: a.application_credential_name,
            user_id: a.user_id,
            secret: a.application_credential_secret.ok_or_else(|| {
                CloudError::Config(format!("cloud '{name}' has no auth.application_credential_secret"))
            })?,
        },
        other => {
            return Err(CloudError::Config(format!(
                "cloud '{name}' uses auth_type '{other}'; heatscaler supports password and v3applicationcredential"
            )));
        }
    };
    let interface = match interface {
        Some(i) => Some(i),
        None => entry
            .interface
            .map(|i| i.parse::<InterfaceType>().map_err(|e| CloudError::Config(format!("cloud '{name}': {e}"))))
            .transpose()?,
    };
    Ok(Settings {
        auth_url,
        credentials,
        region: config.region.clone().or(entry.region_name),
        interface,
        ca_bundle: config.ca_bundle.clone().or(entry.cacert.map(Into::into)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trust_scopes_the_password_login_alone_and_ids_are_not_names() {
        let entry = |auth: serde_json::Value| -> clouds_yaml::CloudEntry {
            serde_json::from_value(serde_json::json!({ "auth": auth })).unwrap()
        };
        let config = OpenStackConfig::default();
        let trust = entry(serde_json::json!({"auth_url": "https://k/v3", "user_id": "trustee", "password": "p",
            "trust_id": "t"}));
        let Ok(Settings { credentials: Credentials::Password { user, project: None, trust: Some(trust), .. }, .. }) =
            from_cloud_entry("magnum", trust, &config, None)
        else {
            panic!("a trust is a password login scoped to the trust alone")
        };
        assert!(matches!(user, IdOrName::Id(ref u) if u == "trustee"));
        assert_eq!(trust, "t");
        // A token has one scope; an application credential's is its own project.
        for (auth, expected) in [
            (
                serde_json::json!({"auth_url": "https://k/v3", "username": "u", "password": "p", "trust_id": "t",
                "project_name": "x"}),
                "drop the project",
            ),
            (
                serde_json::json!({"auth_url": "https://k/v3", "application_credential_id": "a",
                "application_credential_secret": "s", "trust_id": "t"}),
                "application credential",
            ),
        ] {
            let mut e = entry(auth);
            if expected == "application credential" {
                e.auth_type = Some("v3applicationcredential".into());
            }
            let Err(e) = from_cloud_entry("magnum", e, &config, None) else { panic!("accepted: {expected}") };
            assert!(e.to_string().contains("trust_id") && e.to_string().contains(expected), "{e}");
        }

        let by_id = entry(serde_json::json!({"auth_url": "https://k/v3", "username": "u", "password": "p",
            "user_domain_id": "default", "project_name": "x", "project_domain_id": "default"}));
        let Ok(Settings { credentials: Credentials::Password { user_domain, project, .. }, .. }) =
            from_cloud_entry("c", by_id, &config, None)
        else {
            panic!("not a password")
        };
        assert!(matches!(user_domain, IdOrName::Id(ref d) if d == "default"));
        assert!(matches!(project, Some((IdOrName::Name(_), IdOrName::Id(ref d))) if d == "default"));
    }

    #[test]
    fn a_trust_scoped_token_finds_its_endpoint_and_asks_for_renewal_before_it_expires() {
        let body = |expires_at: jiff::Timestamp| {
            serde_json::json!({"token": {"expires_at": expires_at.to_string(), "catalog": [
                {"type": "identity", "endpoints": [{"interface": "public", "region": "R1", "url": "https://k/v3"}]},
                {"type": "orchestration", "endpoints": [
                    {"interface": "public", "region": "R2", "url": "https://heat-r2/v1/p"},
                    {"interface": "internal", "region": "R1", "url": "http://heat-internal/v1/p"},
                    {"interface": "public", "region": "R1", "url": "https://heat/v1/p"}]}]}})
            .to_string()
        };
        let in_an_hour = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600);
        let token = TrustScopedToken::from_response("secret".to_string().into(), body(in_an_hour).as_bytes()).unwrap();
        token.still_valid().unwrap();
        let mut filters = EndpointFilters::default();
        filters.set_region("R1");
        filters.set_interfaces(InterfaceType::Public);
        assert_eq!(token.find_endpoint("orchestration", &filters).unwrap().as_str(), "https://heat/v1/p");
        filters.set_interfaces(InterfaceType::Internal);
        assert_eq!(token.find_endpoint("orchestration", &filters).unwrap().as_str(), "http://heat-internal/v1/p");
        let e = token.find_endpoint("compute", &filters).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::EndpointNotFound);
        assert!(!format!("{token:?}").contains("secret"));

        let in_five_minutes = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(300);
        let token =
            TrustScopedToken::from_response("secret".to_string().into(), body(in_five_minutes).as_bytes()).unwrap();
        assert_eq!(token.still_valid().unwrap_err().kind(), ErrorKind::AuthenticationFailed);
    }

    #[test]
    fn heat_errors_keep_heats_message_and_kind() {
        let body = br#"{"code": 409, "title": "Conflict", "explanation": "There was a conflict", "error": {"type": "ActionInProgress", "message": "Stack k8s already has an action (UPDATE) in progress.", "traceback": null}}"#;
        let e = status_error("update stack k8s", StatusCode::CONFLICT, body);
        assert!(matches!(e, CloudError::Conflict { .. }));
        assert_eq!(
            e.to_string(),
            "update stack k8s: the stack is busy (HTTP 409 conflict): Stack k8s already has an action (UPDATE) in progress. [ActionInProgress]"
        );
        let e = status_error("show stack x", StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert!(e.is_transient() && e.to_string().contains("<html>bad gateway</html>"), "{e}");
        assert!(!status_error("x", StatusCode::BAD_REQUEST, b"{}").is_transient());
    }
}
