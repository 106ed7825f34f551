//! Token generation with no I/O besides the OS random source: alphabets,
//! unbiased sampling, fingerprints and the expiry rule.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The characters a token is drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alphabet {
    /// `A-Z a-z 0-9`: safe in headers, URLs and shells.
    Alphanumeric,
    /// `0-9 a-f`.
    Hex,
    /// `A-Z a-z 0-9 - _` (RFC 4648 URL-safe base64 characters).
    Base64Url,
}

impl Alphabet {
    /// Names as written in configuration.
    pub const NAMES: &'static [&'static str] = &["alphanumeric", "hex", "base64url"];

    /// The alphabet called `name`.
    pub fn parse(name: &str) -> Option<Alphabet> {
        match name {
            "alphanumeric" => Some(Alphabet::Alphanumeric),
            "hex" => Some(Alphabet::Hex),
            "base64url" => Some(Alphabet::Base64Url),
            _ => None,
        }
    }

    /// The name as written in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Alphabet::Alphanumeric => "alphanumeric",
            Alphabet::Hex => "hex",
            Alphabet::Base64Url => "base64url",
        }
    }

    fn chars(self) -> &'static [u8] {
        match self {
            Alphabet::Alphanumeric => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            Alphabet::Hex => b"0123456789abcdef",
            Alphabet::Base64Url => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        }
    }

    /// True when every character of `token` belongs to this alphabet.
    pub fn admits(self, token: &str) -> bool {
        token.bytes().all(|b| self.chars().contains(&b))
    }

    /// The narrowest alphabet that admits `token`.
    pub fn narrowest_for(token: &str) -> Option<Alphabet> {
        [Alphabet::Hex, Alphabet::Alphanumeric, Alphabet::Base64Url]
            .into_iter()
            .find(|a| a.admits(token))
    }
}

/// Why a token could not be generated.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed")]
pub struct RandomSourceError(#[source] getrandom::Error);

/// A new token of `length` characters from the OS CSPRNG, each character
/// uniform over the alphabet (rejection sampling: no modulo bias).
pub fn generate(length: usize, alphabet: Alphabet) -> Result<String, RandomSourceError> {
    let chars = alphabet.chars();
    // Largest multiple of the alphabet size that fits in a byte.
    let limit = 256 - 256 % chars.len();
    let mut out = String::with_capacity(length);
    let mut buf = [0u8; 64];
    while out.len() < length {
        getrandom::fill(&mut buf).map_err(RandomSourceError)?;
        for &b in &buf {
            if usize::from(b) < limit && out.len() < length {
                out.push(char::from(chars[usize::from(b) % chars.len()]));
            }
        }
    }
    Ok(out)
}

/// The non-secret fingerprint: sha256 of the token, in hex.
pub fn fingerprint(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// An RFC 3339 UTC timestamp with second precision.
pub fn timestamp(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// Parse an RFC 3339 timestamp.
pub fn parse_timestamp(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// When a token created at `created_at` expires; `None` for `rotation_days = 0` (never).
pub fn expiry(created_at: OffsetDateTime, rotation_days: i64) -> Option<OffsetDateTime> {
    (rotation_days > 0).then(|| created_at + time::Duration::days(rotation_days))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_requested_length_from_alphabet() {
        for a in [Alphabet::Alphanumeric, Alphabet::Hex, Alphabet::Base64Url] {
            let t = generate(300, a).unwrap();
            assert_eq!(t.len(), 300);
            assert!(a.admits(&t), "{a:?}: {t}");
        }
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(
            generate(48, Alphabet::Alphanumeric).unwrap(),
            generate(48, Alphabet::Alphanumeric).unwrap()
        );
    }

    #[test]
    fn characters_are_roughly_uniform() {
        // 62 symbols over 62_000 draws: each expected 1000 times; a biased
        // sampler (modulo) would skew the first 8 symbols by ~25%.
        let t = generate(62_000, Alphabet::Alphanumeric).unwrap();
        let mut counts = std::collections::HashMap::new();
        for c in t.chars() {
            *counts.entry(c).or_insert(0u32) += 1;
        }
        assert_eq!(counts.len(), 62);
        assert!(counts.values().all(|&n| (800..1200).contains(&n)), "{counts:?}");
    }

    #[test]
    fn fingerprint_is_sha256_hex() {
        assert_eq!(
            fingerprint("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn expiry_and_timestamps() {
        let created = parse_timestamp("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(timestamp(expiry(created, 90).unwrap()), "2026-04-01T00:00:00Z");
        assert_eq!(expiry(created, 0), None);
    }

    #[test]
    fn narrowest_alphabet() {
        assert_eq!(Alphabet::narrowest_for("00ff"), Some(Alphabet::Hex));
        assert_eq!(Alphabet::narrowest_for("Zz09"), Some(Alphabet::Alphanumeric));
        assert_eq!(Alphabet::narrowest_for("a-b_"), Some(Alphabet::Base64Url));
        assert_eq!(Alphabet::narrowest_for("a b"), None);
    }
}
