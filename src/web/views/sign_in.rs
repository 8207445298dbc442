//! The sign-in form and the page that refuses a form failing its CSRF or origin check.

use serde::Serialize;

use super::Frame;

#[derive(Serialize)]
pub struct Refused {
    #[serde(flatten)]
    pub frame: Frame,
    pub message: &'static str,
}

#[derive(Serialize)]
pub struct Login {
    #[serde(flatten)]
    pub frame: Frame,
    pub login_csrf: String,
    pub error: Option<&'static str>,
    /// The command that prints the token of this very relay: its database, by full path.
    pub token_command: String,
}
