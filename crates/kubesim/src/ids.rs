//! Identifiers the API server generates: UIDs and generateName suffixes.

use rand::Rng;

/// A random RFC 4122 version-4 UUID, as the API server assigns to metadata.uid.
pub fn new_uid() -> String {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// The alphabet of apimachinery's `rand.String`: no vowels, no confusable digits.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The 5-character suffix appended to metadata.generateName.
pub fn name_suffix() -> String {
    let mut rng = rand::rng();
    (0..5).map(|_| ALPHANUMS[rng.random_range(0..ALPHANUMS.len())] as char).collect()
}

/// apimachinery's `rand.SafeEncodeString`: maps each byte onto the safe alphabet
/// (used for pod-template-hash).
pub fn safe_encode(text: &str) -> String {
    text.bytes().map(|b| ALPHANUMS[b as usize % ALPHANUMS.len()] as char).collect()
}

/// 32-bit FNV-1a, the hash the deployment controller uses for pod-template-hash.
pub fn fnv32a(data: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c9dc5;
    for b in data {
        hash ^= *b as u32;
        hash = hash.wrapping_mul(0x01000193);
    }
    hash
}
