//! Links to a kept attachment that work without the admin token, for the apps messages
//! are forwarded to: the path names the message and the attachment, and carries an expiry
//! and an HMAC-SHA256 over both, keyed with a secret kept in the database. The link is
//! made when the message is forwarded, usually before its file is kept, so it names the
//! attachment rather than the file.

use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::paths::MEDIA;

/// How long a forwarded link works.
pub const VALID_FOR_S: i64 = 7 * 86_400;

/// The path of one attachment of one message.
pub fn path(message_id: i64, position: usize) -> String {
    format!("{MEDIA}message/{message_id}/{position}")
}

/// The attachment's path with `expires` (unix seconds) and its signature.
pub fn signed(key: &str, message_id: i64, position: usize, expires_s: i64) -> String {
    let path = path(message_id, position);
    let sig = signature(key, &path, expires_s)
        .map(|mac| mac.finalize().into_bytes())
        .map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .unwrap_or_default();
    format!("{path}?expires={expires_s}&sig={sig}")
}

/// Whether `sig` signs `path` until `expires_s`, and that time is still ahead. Compared in
/// constant time.
pub fn verify(key: &str, path: &str, expires_s: &str, sig: &str, now_s: i64) -> bool {
    let Ok(expires) = expires_s.parse::<i64>() else {
        return false;
    };
    if expires < now_s || sig.len() != 64 {
        return false;
    }
    let Some(bytes) = (0..32)
        .map(|i| u8::from_str_radix(sig.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    signature(key, path, expires).is_some_and(|mac| mac.verify_slice(&bytes).is_ok())
}

fn signature(key: &str, path: &str, expires_s: i64) -> Option<hmac::Hmac<Sha256>> {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()).ok()?;
    mac.update(path.as_bytes());
    mac.update(b"\n");
    mac.update(expires_s.to_string().as_bytes());
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(link: &str) -> (String, String, String) {
        let (path, query) = link.split_once('?').unwrap();
        let field = |name: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .unwrap()
                .to_string()
        };
        (path.to_string(), field("expires"), field("sig"))
    }

    #[test]
    fn a_link_works_for_its_attachment_until_it_expires() {
        let link = signed("key", 42, 0, 1_000);
        assert!(link.starts_with("/media/message/42/0?expires=1000&sig="));
        let (path, expires, sig) = parts(&link);
        assert!(verify("key", &path, &expires, &sig, 999));
        assert!(verify("key", &path, &expires, &sig, 1_000));
        assert!(!verify("key", &path, &expires, &sig, 1_001), "expired");
        assert!(!verify("other", &path, &expires, &sig, 999), "another key");
        assert!(
            !verify("key", "/media/message/43/0", &expires, &sig, 999),
            "another message"
        );
        assert!(!verify("key", &path, "2000", &sig, 999), "a later expiry");
        assert!(!verify("key", &path, &expires, &sig[..62], 999));
        assert!(!verify("key", &path, &expires, &"zz".repeat(32), 999));
    }
}
