//! What Chatrace says about a contact, as plain data: the channel it writes on (Chatrace's
//! channel numbers and names) and what a lookup of the contact learns. A leaf, so the
//! parser and the store read these without reaching up to the API client in `chatrace`.

/// What Chatrace's API knows about a contact that the relay shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactInfo {
    pub name: Option<String>,
    pub profile_pic: Option<String>,
    /// The channel's name (`instagram`, `messenger`...), from the record's channel number.
    pub channel: Option<String>,
}

/// Chatrace's channel numbers, as its contact records give them; names are kept as sent.
pub fn channel_name(raw: &str) -> String {
    match raw.parse::<i64>() {
        Ok(0) => "messenger".into(),
        Ok(9) => "webchat".into(),
        Ok(10) => INSTAGRAM.into(),
        Ok(code) => code.to_string(),
        Err(_) => raw.to_lowercase(),
    }
}

/// Chatrace's channel name for Instagram in the send API.
pub const INSTAGRAM: &str = "instagram";
