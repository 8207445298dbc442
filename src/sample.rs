//! The sample webhook: what a Chatrace External Request sends, posted to a relay and marked
//! as a test, so `send-test` and the checklist's button prove the whole path.

use std::time::Duration;

use crate::outbound::{self, Answer, Failure};
use crate::time::{format_rfc3339, now_ms};

/// Header a sender uses to mark a request as a test: stored and shown, never counted.
pub const TEST_HEADER: &str = "X-Relay-Test";

/// Posts the sample webhook the way Chatrace would, marked as a test so it is stored and
/// shown but never counted. Used by `send-test` and by the setup page's button.
pub fn post(url: &str, secret: &str) -> Result<Answer, Failure> {
    let headers = [
        ("Content-Type", "application/json"),
        ("X-Webhook-Secret", secret),
        (TEST_HEADER, "1"),
    ];
    outbound::post(url, &headers, sample_body().as_bytes(), SAMPLE_TIMEOUT)
}

const SAMPLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The body a Chatrace External Request would send, with a fresh message id so repeated
/// runs are not taken for duplicates.
fn sample_body() -> String {
    let now = now_ms();
    serde_json::json!({
        "contact_id": "test-contact",
        "first_name": "Test",
        "last_name": "Contact",
        "ig_username": "chatrace_relay_test",
        "channel": "instagram",
        "text": "Test message from chatrace-relay send-test / Тестовое сообщение ✅",
        "message_id": format!("test-{now}"),
        "timestamp": format_rfc3339(now),
    })
    .to_string()
}
