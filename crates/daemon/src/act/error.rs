//! Why an action failed. A failure is reported and the next pass plans again
//! from fresh data; it never turns into another action.

use crate::cloud::group::GroupError;

#[derive(Debug, thiserror::Error)]
pub enum ActuatorError {
    #[error("{what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Heat(#[from] GroupError),
    #[error("no node group named {0} is configured")]
    UnknownGroup(String),
    #[error("{0}")]
    Evictions(String),
    /// A pod-level write (resize, evict-and-recreate) failed.
    #[error(transparent)]
    PodLevel(#[from] crate::vpa::client::ClientError),
}

impl ActuatorError {
    pub(crate) fn kube(what: impl Into<String>) -> impl FnOnce(kube::Error) -> ActuatorError {
        let what = what.into();
        move |source| ActuatorError::Kube { what, source }
    }

    /// The API server refused a write because the object changed since it was read.
    pub(crate) fn is_conflict(&self) -> bool {
        matches!(self, ActuatorError::Kube { source: kube::Error::Api(s), .. } if s.code == 409)
    }
}

/// Worth retrying at once: the API server or the connection failed, not the request.
pub(crate) fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code >= 500 || s.code == 429,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}
