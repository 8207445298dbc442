//! Standard Webhooks signing for forwarded messages, and the base64 it is written in.
//!
//! The secret is `whsec_` + base64 of the key bytes; a signature is `v1,` + base64 of
//! HMAC-SHA256(key, "{id}.{timestamp}.{body}"), so any Standard Webhooks verifier accepts it.

use hmac::{KeyInit, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";
/// The spec asks for 24 to 64 random bytes; shorter keys are too weak to sign with.
const MIN_KEY: usize = 24;
const MAX_KEY: usize = 64;

/// A validated forwarding secret: the raw key bytes, never logged.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

impl SigningKey {
    /// Parses `whsec_<base64>`; the error says what to fix without echoing the secret.
    pub fn parse(secret: &str) -> Result<SigningKey, String> {
        let encoded = secret.trim().strip_prefix(PREFIX).ok_or(
            "must start with whsec_ followed by base64 of 24 to 64 random bytes, \
             e.g. whsec_$(head -c 32 /dev/urandom | base64)",
        )?;
        let key = decode(encoded).ok_or("the part after whsec_ is not valid base64")?;
        if !(MIN_KEY..=MAX_KEY).contains(&key.len()) {
            return Err(format!(
                "decodes to {} bytes; use {MIN_KEY} to {MAX_KEY} random bytes",
                key.len()
            ));
        }
        Ok(SigningKey(key))
    }

    /// The `webhook-signature` header value for one attempt.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // new_from_slice accepts keys of any length for HMAC, so this cannot fail.
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", encode(&mac.finalize().into_bytes()))
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648 section 4) with padding.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64; padding is optional because people paste secrets without it.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = acc << 6 | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero, or two texts would decode to the same bytes.
    (acc == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC4648: &[(&str, &str)] = &[
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];

    #[test]
    fn base64_matches_rfc4648_vectors_both_ways() {
        for (plain, encoded) in RFC4648 {
            assert_eq!(encode(plain.as_bytes()), *encoded);
            assert_eq!(decode(encoded).unwrap(), plain.as_bytes());
            assert_eq!(
                decode(encoded.trim_end_matches('=')).unwrap(),
                plain.as_bytes()
            );
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all)).unwrap(), all);
    }

    #[test]
    fn base64_refuses_garbage() {
        assert!(decode("Zm9v!").is_none());
        assert!(decode("Z").is_none());
        assert!(decode("Zh==").is_none(), "non-zero leftover bits");
        assert!(
            decode("Zm-v").is_none(),
            "url-safe alphabet is not standard base64"
        );
    }

    #[test]
    fn signature_matches_the_standard_webhooks_test_vector() {
        let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            key.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_checked_with_a_reason() {
        assert!(SigningKey::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap_err()
            .contains("whsec_"));
        assert!(SigningKey::parse("whsec_not base64!")
            .unwrap_err()
            .contains("base64"));
        assert!(SigningKey::parse(&format!("whsec_{}", encode(&[7; 16])))
            .unwrap_err()
            .contains("16 bytes"));
        assert!(SigningKey::parse(&format!("whsec_{}", encode(&[7; 65]))).is_err());
        assert!(SigningKey::parse(&format!("whsec_{}", encode(&[7; 64]))).is_ok());
        let shown = format!(
            "{:?}",
            SigningKey::parse(&format!("whsec_{}", encode(&[7; 32])))
        );
        assert!(!shown.contains("BwcH"), "Debug never shows the key");
    }
}
