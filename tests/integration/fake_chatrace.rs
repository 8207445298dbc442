//! The Chatrace API as the fake server plays it: it reads only `X-ACCESS-TOKEN`, like the
//! real one. Also a foreign server sitting where the relay's public URL points.

use std::time::Duration;

use crate::fake::{Action, Fake, Recorded};
use crate::util::{Relay, ADMIN, SECRET};

/// How the fake Chatrace answers every request.
#[derive(Clone)]
pub enum Answer {
    /// A valid token: `GET /accounts/me` names the account for exactly this
    /// `X-ACCESS-TOKEN`; anything else gets 401 "No valid API key provided".
    Account(String),
    /// Chatrace refusing every token.
    Unauthorized,
    /// Chatrace's failure reported as HTTP 200.
    ErrorInBody,
    /// Answers only after this long.
    Hang(Duration),
    /// Any other server: this status and body.
    Fixed(u16, &'static str),
}

/// A token of the shape Chatrace issues: account digits, a dot, letters and digits.
pub const TOKEN: &str = "1234567.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN";

/// A relay that talks to `chatrace` (a fake) as its Chatrace API, with `TOKEN`.
pub fn relay_with_chatrace(name: &str, chatrace: &Fake) -> Relay {
    let api = chatrace.url("");
    Relay::start_with(
        name,
        &[],
        &[
            ("CHATRACE_RELAY_WEBHOOK_SECRET", SECRET),
            ("CHATRACE_RELAY_ADMIN_TOKEN", ADMIN),
            ("CHATRACE_TOKEN", TOKEN),
            ("CHATRACE_API_URL", api.as_str()),
        ],
    )
}

const UNAUTHORIZED: &str = r#"{"error":"No valid API key provided"}"#;

pub fn start(answer: Answer) -> Fake {
    Fake::start(move |request| respond(&answer, request))
}

fn respond(answer: &Answer, request: &Recorded) -> Action {
    let token = request.header("X-ACCESS-TOKEN");
    match answer {
        Answer::Account(valid)
            if token == Some(valid.as_str()) && request.url == "/accounts/me" =>
        {
            Action::json(
                200,
                r#"{"page_id":"104912345678","name":"Cozy Shop","active":1,"created":"2025-03-01","total_users":1290}"#,
            )
        }
        Answer::Account(valid) if token == Some(valid.as_str()) => {
            Action::json(404, r#"{"error":{"code":404,"message":"Not found"}}"#)
        }
        Answer::Account(_) | Answer::Unauthorized => Action::json(401, UNAUTHORIZED),
        Answer::ErrorInBody => Action::json(
            200,
            r#"{"error":{"code":403,"message":"API access is not part of your plan"}}"#,
        ),
        Answer::Hang(delay) => Action::Hang(*delay),
        Answer::Fixed(status, body) => Action::Respond {
            status: *status,
            headers: Vec::new(),
            body: body.to_string(),
        },
    }
}
