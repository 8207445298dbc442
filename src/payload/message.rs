//! The messages a body holds, and the keys that tell a message sent twice from a new one.

use serde::{Deserialize, Serialize};

use crate::hash::fnv1a_128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

impl std::str::FromStr for Direction {
    type Err = String;

    fn from_str(s: &str) -> Result<Direction, String> {
        match s {
            "in" => Ok(Direction::In),
            "out" => Ok(Direction::Out),
            other => Err(format!("not a direction: {other:?}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub sent_at_ms: Option<i64>,
    pub channel: Option<String>,
    pub direction: Direction,
    pub contact_id: String,
    pub contact_name: Option<String>,
    pub username: Option<String>,
    /// The URL of the contact's picture, when the sender names one.
    pub profile_pic: Option<String>,
    pub text: Option<String>,
    pub attachments: Vec<Attachment>,
    pub external_id: Option<String>,
}

impl NewMessage {
    /// The permanent dedup key: Some("x:<external_id>") when there is an external id, else
    /// Some("t:<hex of 128-bit FNV-1a over contact_id \0 sent_at_ms \0 text>") when there is a
    /// sender timestamp, else None (the store then dedups contact+text within a time window).
    pub fn dedup_key(&self) -> Option<String> {
        if let Some(id) = &self.external_id {
            return Some(format!("x:{id}"));
        }
        let sent_at = self.sent_at_ms?.to_string();
        let text = self.text.as_deref().unwrap_or("");
        let parts: [&[u8]; 5] = [
            self.contact_id.as_bytes(),
            b"\0",
            sent_at.as_bytes(),
            b"\0",
            text.as_bytes(),
        ];
        // Attachment URLs are part of the identity: two different images sent in the same
        // second carry no text and would otherwise collide.
        let urls = self
            .attachments
            .iter()
            .flat_map(|a| [b"\0".as_slice(), a.url.as_bytes()]);
        let hash = fnv1a_128(parts.iter().copied().chain(urls));
        Some(format!("t:{hash:032x}"))
    }
}

/// The stored form of a dedup key: the first 16 bytes of its SHA-256. Fixed-size and
/// smaller than the text it is made from (an external id can be long), and still unique:
/// unlike the FNV hash inside a `t:` key, SHA-256 cannot be steered into a collision by
/// whoever chooses the external ids.
pub fn dedup_hash(key: &str) -> [u8; 16] {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut hash = [0u8; 16];
    hash.copy_from_slice(&digest[..16]);
    hash
}

impl NewMessage {
    /// `dedup_key` as stored: see `dedup_hash`.
    pub fn dedup_hash(&self) -> Option<[u8; 16]> {
        self.dedup_key().map(|key| dedup_hash(&key))
    }

    /// What makes two messages without an id or a sender time "the same request again":
    /// 128-bit FNV-1a over contact, direction, text and attachment URLs.
    pub fn weak_key(&self) -> [u8; 16] {
        let text = self.text.as_deref().unwrap_or("");
        let parts: [&[u8]; 5] = [
            self.contact_id.as_bytes(),
            b"\0",
            self.direction.as_str().as_bytes(),
            b"\0",
            text.as_bytes(),
        ];
        let urls = self
            .attachments
            .iter()
            .flat_map(|a| [b"\0".as_slice(), a.kind.as_bytes(), b"\0", a.url.as_bytes()]);
        fnv1a_128(parts.iter().copied().chain(urls)).to_be_bytes()
    }
}
