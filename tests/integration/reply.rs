//! Replies through the Chatrace API, against a fake Chatrace.

use std::time::Duration;

use crate::fake::{Action, Fake};
use crate::fake_chatrace::{relay_with_chatrace, TOKEN};
use crate::util::*;

fn reply(relay: &Relay, body: &str) -> Reply {
    relay.request(
        "POST",
        "/api/messages/reply",
        &[
            ("Authorization", &format!("Bearer {ADMIN}")),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}

fn stored(relay: &Relay) -> Vec<serde_json::Value> {
    relay.get_admin("/api/messages").json()["messages"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_reply_goes_through_chatrace_and_is_stored_as_outgoing() {
    let chatrace = Fake::start(|_| Action::json(200, r#"{"success":true}"#));
    let relay = relay_with_chatrace("reply-ok", &chatrace);
    let answer = reply(
        &relay,
        r#"{"contact_id":"6742218934563412","text":"Доставка бесплатная"}"#,
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let id = answer.json()["id"].as_i64().unwrap();

    let calls = chatrace.wait_for(1, Duration::from_secs(1));
    let call = &calls[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.url, "/contacts/6742218934563412/send/text");
    assert_eq!(call.header("X-ACCESS-TOKEN"), Some(TOKEN));
    assert_eq!(
        call.json(),
        serde_json::json!({"text":"Доставка бесплатная","channel":"instagram"})
    );

    let messages = stored(&relay);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["id"], id);
    assert_eq!(messages[0]["direction"], "out");
    assert_eq!(messages[0]["contact_id"], "6742218934563412");
    assert_eq!(messages[0]["text"], "Доставка бесплатная");

    // A numeric contact id, as a script might send it, works too.
    let numeric = reply(&relay, r#"{"contact_id":42,"text":"hi"}"#);
    assert_eq!(numeric.status, 200, "{}", numeric.text());
    assert_eq!(
        chatrace.wait_for(2, Duration::from_secs(1))[1].url,
        "/contacts/42/send/text"
    );
}

#[test]
fn an_error_in_a_200_is_a_failure_shown_verbatim() {
    const ERROR: &str = "(#551) This person isn't available right now.";
    let chatrace = Fake::start(|_| {
        Action::json(
            200,
            &format!(r#"{{"error":{{"code":100,"message":"{ERROR}"}}}}"#),
        )
    });
    let relay = relay_with_chatrace("reply-error", &chatrace);
    let answer = reply(&relay, r#"{"contact_id":"1","text":"hello"}"#);
    assert_eq!(answer.status, 502, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["ok"], false);
    assert_eq!(body["chatrace_error"], ERROR);
    assert_eq!(body["chatrace_status"], 200);
    assert!(body["error"].as_str().unwrap().contains(ERROR));
    assert!(stored(&relay).is_empty(), "a refused reply is not stored");
}

#[test]
fn success_false_and_http_errors_are_failures_too() {
    let chatrace = Fake::start(|r| match r.index {
        0 => Action::json(200, r#"{"success":false,"message":"Contact not found"}"#),
        _ => Action::Respond {
            status: 401,
            headers: Vec::new(),
            body: "No valid API key provided".into(),
        },
    });
    let relay = relay_with_chatrace("reply-false", &chatrace);
    let first = reply(&relay, r#"{"contact_id":"1","text":"hello"}"#);
    assert_eq!(first.status, 502);
    assert_eq!(first.json()["chatrace_error"], "Contact not found");
    let second = reply(&relay, r#"{"contact_id":"1","text":"hello"}"#);
    assert_eq!(second.json()["chatrace_error"], "No valid API key provided");
    assert_eq!(second.json()["chatrace_status"], 401);
    assert!(stored(&relay).is_empty());
}

#[test]
fn without_a_token_the_reply_says_to_set_one() {
    let relay = Relay::start("reply-no-token");
    let answer = reply(&relay, r#"{"contact_id":"1","text":"hello"}"#);
    assert_eq!(answer.status, 503);
    assert!(answer.json()["error"]
        .as_str()
        .unwrap()
        .contains("CHATRACE_TOKEN"));
}

#[test]
fn replies_need_the_admin_token_and_a_sendable_body() {
    let chatrace = Fake::always(200);
    let relay = relay_with_chatrace("reply-input", &chatrace);
    let anonymous = relay.request(
        "POST",
        "/api/messages/reply",
        &[],
        br#"{"contact_id":"1","text":"x"}"#,
    );
    assert_eq!(anonymous.status, 401);
    for bad in [
        "not json",
        r#"{"text":"no contact"}"#,
        r#"{"contact_id":"1"}"#,
        r#"{"contact_id":"../accounts","text":"x"}"#,
        r#"{"contact_id":"1","text":"   "}"#,
    ] {
        assert_eq!(reply(&relay, bad).status, 400, "{bad}");
    }
    let long = format!(r#"{{"contact_id":"1","text":"{}"}}"#, "a".repeat(1000));
    assert_eq!(reply(&relay, &long).status, 400);
    assert!(
        chatrace.requests().is_empty(),
        "nothing bad reaches Chatrace"
    );
}
