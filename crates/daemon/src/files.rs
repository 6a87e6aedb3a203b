//! Reads of files an operator names (the configuration, secrets, kubeconfig,
//! clouds.yaml, CA bundles) with an upper bound on their size.
//!
//! `std::fs::read_to_string` reads until end of file: pointed at `/dev/zero`
//! or a FIFO fed by a runaway process it never returns and takes all memory.
//! Every such file is small, so anything larger is refused with the bound in
//! the message, after reading at most one byte past it.

use std::io::Read;
use std::path::Path;

/// The configuration file, a kubeconfig, clouds.yaml: text documents of a few KiB.
pub const MAX_DOCUMENT_BYTES: u64 = 1024 * 1024;
/// A secret (password, token, key) or a webhook URL.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;
/// A PEM bundle of CA certificates (a system bundle is about 200 KiB).
pub const MAX_CA_BUNDLE_BYTES: u64 = 4 * 1024 * 1024;

/// Why a bounded read failed. Never contains the file's content.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    #[error("{0}")]
    Io(String),
    #[error("is larger than {limit} bytes (the limit for this file)")]
    TooLarge { limit: u64 },
    #[error("is not UTF-8 text")]
    NotText,
}

/// Reads at most `limit` bytes of `path`; a longer file is an error.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::File::open(path).map_err(|e| ReadError::Io(e.kind().to_string()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| ReadError::Io(e.kind().to_string()))?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

/// [`read_bounded`] for text files.
pub fn read_text_bounded(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read_bounded(path, limit)?).map_err(|_| ReadError::NotText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_file_is_refused_at_the_bound() {
        let started = std::time::Instant::now();
        let e = read_text_bounded(Path::new("/dev/zero"), MAX_DOCUMENT_BYTES).unwrap_err();
        assert_eq!(e, ReadError::TooLarge { limit: MAX_DOCUMENT_BYTES });
        assert!(e.to_string().contains("1048576 bytes"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_file_at_the_bound_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "x".repeat(16)).unwrap();
        assert_eq!(read_text_bounded(&p, 16).unwrap().len(), 16);
        assert_eq!(read_text_bounded(&p, 15).unwrap_err(), ReadError::TooLarge { limit: 15 });
        assert!(matches!(read_text_bounded(&dir.path().join("missing"), 15), Err(ReadError::Io(_))));
    }
}
