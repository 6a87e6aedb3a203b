//! One attempt at the lease: read it, decide (`decide.rs`), write it with the
//! resourceVersion read. A 409 means another candidate wrote in between: the
//! lease is read again and decided afresh, once; a second conflict in a row
//! waits for the next attempt.

use std::time::Instant;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ObjectMeta, PostParams};

use super::decide::{Candidate, Observed, Step, holder};
use crate::telemetry::{KubeResource, KubeVerb, Metrics};

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Attempt {
    /// We hold the lease now; `previous` is who held it when we took it over
    /// (`None` when we renewed our own, or it was free).
    Leading {
        acquired: bool,
        previous: Option<String>,
    },
    Standby {
        holder: String,
    },
}

pub struct LeaseClient {
    api: Api<Lease>,
    name: String,
    metrics: std::sync::Arc<Metrics>,
}

impl LeaseClient {
    pub fn new(api: Api<Lease>, name: String, metrics: std::sync::Arc<Metrics>) -> Self {
        Self { api, name, metrics }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Acquires or renews. `now` is when the attempt started: the caller's
    /// leadership deadline counts from it, never from the response.
    pub async fn acquire_or_renew(
        &self,
        candidate: &Candidate,
        observed: &mut Option<Observed>,
        now: Instant,
    ) -> Result<Attempt, kube::Error> {
        for _ in 0..2 {
            let read = self.get().await?;
            let spec = read.as_ref().and_then(|l| l.spec.as_ref());
            let previous = spec.and_then(holder).map(str::to_string);
            let wall = jiff::Timestamp::now();
            let written = match candidate.step(spec, observed, now, wall) {
                Step::Standby { holder, .. } => return Ok(Attempt::Standby { holder }),
                Step::Create(spec) => {
                    let lease = Lease {
                        metadata: ObjectMeta { name: Some(self.name.clone()), ..ObjectMeta::default() },
                        spec: Some(spec),
                    };
                    self.call(KubeVerb::Create, self.api.create(&PostParams::default(), &lease)).await
                }
                Step::Write { spec, .. } => {
                    let mut lease = read.clone().expect("a write follows a read lease");
                    lease.spec = Some(spec);
                    self.call(KubeVerb::Update, self.api.replace(&self.name, &PostParams::default(), &lease)).await
                }
            };
            match written {
                Ok(lease) => {
                    let spec = lease.spec.unwrap_or_default();
                    let acquired = previous.as_deref() != Some(candidate.identity.as_str());
                    *observed = Some(Observed { spec, at: now });
                    let previous = previous.filter(|p| p != &candidate.identity);
                    return Ok(Attempt::Leading { acquired, previous });
                }
                // Another candidate wrote since our read (or created it first): read again.
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    tracing::debug!(lease = %self.name, "lease changed under us; reading it again");
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        let holder = self.get().await?.and_then(|l| l.spec).as_ref().and_then(holder).unwrap_or_default().to_string();
        Ok(Attempt::Standby { holder })
    }

    /// Gives the lease up if we hold it. `Ok(false)`: it was not ours.
    pub async fn release(&self, candidate: &Candidate) -> Result<bool, kube::Error> {
        let Some(mut lease) = self.get().await? else { return Ok(false) };
        let Some(released) = lease.spec.as_ref().and_then(|s| candidate.released(s, jiff::Timestamp::now())) else {
            return Ok(false);
        };
        lease.spec = Some(released);
        self.call(KubeVerb::Update, self.api.replace(&self.name, &PostParams::default(), &lease)).await?;
        Ok(true)
    }

    async fn get(&self) -> Result<Option<Lease>, kube::Error> {
        self.call(KubeVerb::Get, self.api.get_opt(&self.name)).await
    }

    async fn call<T>(
        &self,
        verb: KubeVerb,
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, kube::Error> {
        let started = Instant::now();
        let result = call.await;
        // A conflict is the protocol working, not a failed request.
        let ok = match &result {
            Ok(_) => true,
            Err(e) => is_conflict(e),
        };
        self.metrics.observe_kube_call(verb, KubeResource::Lease, started.elapsed(), ok);
        result
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}
