//! The webhook's own serving certificate, when the operator gives none: a
//! throwaway CA signs one serving certificate for the name the API server
//! calls, and its key is dropped at once. Kept in the state directory (0600)
//! so a restart serves the same certificate; replaced `renew-before` its
//! expiry by a new CA and certificate.
//!
//! Why a CA whose key is never kept: the registration's `caBundle` must trust
//! every replica's certificate, old and new, during a rotation (the bundle
//! holds several CAs, `registration::merged_bundle`). A CA that signed one
//! certificate and whose key is gone cannot sign another, so a CA left in
//! the bundle after its certificate was replaced trusts nothing new — and no
//! CA key lies on any disk for anyone to steal.
//!
//! Generated with rcgen (the rustls project's X.509 generator, on the ring
//! the daemon's TLS already uses): no `openssl` binary at run time, nothing
//! for a hardened unit (`SystemCallFilter=@system-service`) to execute.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use serde::{Deserialize, Serialize};

/// Files in the state directory.
pub const CA_FILE: &str = "webhook-ca.crt";
pub const CERT_FILE: &str = "webhook.crt";
pub const KEY_FILE: &str = "webhook.key";
/// What was generated, for whom and until when (rcgen writes certificates, it
/// does not read them back).
const ISSUED_FILE: &str = "webhook.json";
/// A clock a few minutes behind on another master still accepts a new certificate.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// The name the API server checks the serving certificate against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServingName {
    /// `clientConfig.url`'s host when it is an address (`https://127.0.0.1:9443/…`).
    Ip(IpAddr),
    /// `clientConfig.service`: `NAME.NAMESPACE.svc`.
    Dns(String),
}

/// Why the certificate could not be generated or kept. Never holds key bytes.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("admission-webhook.state-directory {dir}: {problem}")]
    Store { dir: PathBuf, problem: String },
    #[error("generating the webhook's certificate: {0}")]
    Generate(String),
}

/// The certificate being served, as the registration needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// PEM of the CA that signed it: this replica's part of the `caBundle`.
    pub ca_pem: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub not_after: SystemTime,
}

/// A certificate issued and not yet kept nor served. Its `Debug` shows no key.
pub struct Fresh {
    /// PEM of the CA that signed it.
    pub ca_pem: String,
    cert_pem: String,
    key_pem: String,
    /// Seconds since the epoch.
    not_after: u64,
}

impl std::fmt::Debug for Fresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fresh").field("not_after", &self.not_after).finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct IssuedRecord {
    names: Vec<ServingName>,
    /// Seconds since the epoch.
    not_after: u64,
}

/// Makes and keeps the certificate of one listener.
#[derive(Clone, Debug)]
pub struct CertificateStore {
    pub dir: PathBuf,
    pub names: Vec<ServingName>,
    pub validity: Duration,
    pub renew_before: Duration,
}

impl CertificateStore {
    /// When `issued` is to be replaced.
    pub fn renew_at(&self, issued: &Issued) -> SystemTime {
        issued.not_after.checked_sub(self.renew_before).unwrap_or(UNIX_EPOCH)
    }

    /// The certificate to serve at start: the kept one if it is for these
    /// names and has not expired at `now` — even when due for renewal, which
    /// the upkeep does with its CA registered first (`upkeep`) — else a new
    /// one, written before it is returned (nothing else could be served).
    pub fn current(&self, now: SystemTime) -> Result<Issued, GenerateError> {
        if let Some(kept) = self.kept()
            && now < kept.not_after
        {
            return Ok(kept);
        }
        self.generate(now)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn kept(&self) -> Option<Issued> {
        let record: IssuedRecord = serde_json::from_slice(&std::fs::read(self.path(ISSUED_FILE)).ok()?).ok()?;
        if record.names != self.names || !self.path(CERT_FILE).is_file() || !self.path(KEY_FILE).is_file() {
            return None;
        }
        Some(Issued {
            ca_pem: std::fs::read_to_string(self.path(CA_FILE)).ok()?,
            cert: self.path(CERT_FILE),
            key: self.path(KEY_FILE),
            not_after: UNIX_EPOCH + Duration::from_secs(record.not_after),
        })
    }

    /// A new CA and serving certificate, written at once.
    pub fn generate(&self, now: SystemTime) -> Result<Issued, GenerateError> {
        self.keep(&self.issue(now)?)
    }

    /// A new CA and serving certificate, in memory only: a renewal's, held
    /// until its CA is registered, then written by [`Self::keep`] and served.
    /// The CA's key is dropped here.
    pub fn issue(&self, now: SystemTime) -> Result<Fresh, GenerateError> {
        let generate = |e: rcgen::Error| GenerateError::Generate(e.to_string());
        let not_before = time::OffsetDateTime::from(now - BACKDATE);
        // Whole seconds: what the record keeps is what the certificate says.
        let not_after_secs = (now + self.validity).duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let not_after = UNIX_EPOCH + Duration::from_secs(not_after_secs);

        let mut ca = CertificateParams::default();
        ca.distinguished_name.push(DnType::CommonName, "heatscaler admission webhook CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        ca.not_before = not_before;
        ca.not_after = time::OffsetDateTime::from(not_after);
        let ca_key = KeyPair::generate().map_err(generate)?;
        let ca_pem = ca.self_signed(&ca_key).map_err(generate)?.pem();
        let issuer = Issuer::new(ca, ca_key);

        let mut leaf = CertificateParams::default();
        leaf.distinguished_name.push(DnType::CommonName, "heatscaler admission webhook");
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.subject_alt_names = self
            .names
            .iter()
            .map(|n| match n {
                ServingName::Ip(ip) => Ok(SanType::IpAddress(*ip)),
                ServingName::Dns(name) => name.clone().try_into().map(SanType::DnsName),
            })
            .collect::<Result<_, _>>()
            .map_err(generate)?;
        leaf.not_before = not_before;
        leaf.not_after = time::OffsetDateTime::from(not_after);
        let key = KeyPair::generate().map_err(generate)?;
        let cert_pem = leaf.signed_by(&key, &issuer).map_err(generate)?.pem();
        drop(issuer);
        Ok(Fresh { ca_pem, cert_pem, key_pem: key.serialize_pem(), not_after: not_after_secs })
    }

    /// Writes `fresh` as the kept certificate: what a restart serves and
    /// what the listener re-reads.
    pub fn keep(&self, fresh: &Fresh) -> Result<Issued, GenerateError> {
        self.create_dir()?;
        // The key before the certificate, the record last: a reader that sees
        // the new record sees the pair it describes.
        self.write(KEY_FILE, fresh.key_pem.as_bytes())?;
        self.write(CERT_FILE, fresh.cert_pem.as_bytes())?;
        self.write(CA_FILE, fresh.ca_pem.as_bytes())?;
        let record = IssuedRecord { names: self.names.clone(), not_after: fresh.not_after };
        self.write(ISSUED_FILE, &serde_json::to_vec(&record).expect("a record serialises"))?;
        Ok(Issued {
            ca_pem: fresh.ca_pem.clone(),
            cert: self.path(CERT_FILE),
            key: self.path(KEY_FILE),
            not_after: UNIX_EPOCH + Duration::from_secs(fresh.not_after),
        })
    }

    fn store_error(&self, what: &str, e: &std::io::Error) -> GenerateError {
        GenerateError::Store { dir: self.dir.clone(), problem: format!("{what}: {}", e.kind()) }
    }

    fn create_dir(&self) -> Result<(), GenerateError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| self.store_error("cannot create it", &e))
    }

    /// Written 0600 beside the target and renamed over it: never half a file,
    /// never a moment readable by others.
    fn write(&self, file: &str, bytes: &[u8]) -> Result<(), GenerateError> {
        let target = self.path(file);
        let tmp = self.path(&format!(".{file}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| self.store_error(&format!("cannot write {file}"), &e))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| self.store_error(&format!("cannot write {file}"), &e))?;
        std::fs::rename(&tmp, &target).map_err(|e| self.store_error(&format!("cannot replace {file}"), &e))
    }
}

/// The names a listener's certificate must carry.
pub fn serving_names(target: &crate::admission::registration::ClientTarget) -> Vec<ServingName> {
    use crate::admission::registration::ClientTarget;
    match target {
        ClientTarget::Url { host, .. } => vec![ServingName::Ip(*host)],
        ClientTarget::Service(s) => vec![ServingName::Dns(format!("{}.{}.svc", s.name, s.namespace))],
    }
}

/// Whether `path` is readable by its owner only (what the key must be).
pub fn owner_only(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> CertificateStore {
        CertificateStore {
            dir: dir.join("state"),
            names: vec![ServingName::Ip([127, 0, 0, 1].into())],
            validity: Duration::from_secs(3600),
            renew_before: Duration::from_secs(1200),
        }
    }

    #[test]
    fn a_generated_certificate_is_kept_owner_only_and_served_until_it_expires_a_renewal_only_once_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let now = SystemTime::now();
        let first = store.current(now).unwrap();
        for file in [CA_FILE, CERT_FILE, KEY_FILE, ISSUED_FILE] {
            assert!(owner_only(&store.dir.join(file)), "{file} is 0600");
        }
        assert!(owner_only(&store.dir), "the directory is 0700");
        assert_eq!(first.not_after.duration_since(now).unwrap().as_secs(), 3599, "whole seconds");
        assert_eq!(store.renew_at(&first), first.not_after - Duration::from_secs(1200));
        assert!(!std::fs::read_to_string(&first.key).unwrap().is_empty());
        // No CA key is kept anywhere.
        for entry in std::fs::read_dir(&store.dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            assert!(text.matches("PRIVATE KEY-----").count() <= 2, "one key, the serving one");
        }

        // A restart serves the same certificate, due for renewal or not, until it expires.
        assert_eq!(store.current(now + Duration::from_secs(2300)).unwrap(), first);
        assert_eq!(store.current(now + Duration::from_secs(3598)).unwrap(), first, "due, not expired");
        // A renewal issued is not kept (nor served) until kept.
        let fresh = store.issue(now + Duration::from_secs(2400)).unwrap();
        assert_ne!(fresh.ca_pem, first.ca_pem);
        assert!(!format!("{fresh:?}").contains("PRIVATE"), "{fresh:?}");
        assert_eq!(store.current(now + Duration::from_secs(2400)).unwrap(), first);
        let renewed = store.keep(&fresh).unwrap();
        assert_eq!(renewed.ca_pem, fresh.ca_pem);
        assert!(renewed.not_after > first.not_after);
        assert_eq!(store.current(now + Duration::from_secs(2400)).unwrap(), renewed, "and that one is kept");
        // Expired (a daemon stopped for longer than the validity): a new one at once.
        let late = store.current(renewed.not_after).unwrap();
        assert_ne!(late.ca_pem, renewed.ca_pem);
        // Another name (the listener moved): a new one at once.
        let moved = CertificateStore { names: vec![ServingName::Dns("hs.heatscaler.svc".into())], ..store.clone() };
        assert_ne!(moved.current(now).unwrap().ca_pem, late.ca_pem);
    }

    #[test]
    fn an_unwritable_state_directory_is_named_and_the_error_holds_no_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("state"), "a file, not a directory").unwrap();
        let e = store(dir.path()).current(SystemTime::now()).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("admission-webhook.state-directory") && text.contains("state"), "{text}");
        assert!(!text.contains("PRIVATE"), "{text}");
    }
}
