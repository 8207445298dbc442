//! The page's buttons: a checklist action, retrying a failed delivery, sending a reply.
//! Each runs, leaves its outcome as a one-time message, and goes back to the dashboard (a
//! reply from a thread, to that thread).

use log::error;

use crate::checklist::{self, Action};
use crate::error::Result;
use crate::http::{Request, Response};
use crate::paths;
use crate::store::Requeue;
use crate::text::form_field;
use crate::{forward, reply};

use super::session::Current;
use super::state::Context;

/// `POST /setup/<action>`: runs one of the checklist's buttons, then goes back to the
/// dashboard, which shows the outcome once.
pub fn setup_action(cx: &mut Context, req: &Request, current: &Current) -> Result<Response> {
    let lang = req.lang();
    let name = req.path.strip_prefix(paths::SETUP_ACTION).unwrap_or("");
    // A stale or forged name does nothing; a button the checklist does not show right
    // now is refused by the action itself.
    let message = match Action::from_name(name) {
        Some(action) => {
            match checklist::run_action(&cx.relay(), action, form_field(&req.form(), "value"), lang)
            {
                Ok(sentence) => sentence,
                Err(e) => {
                    error!("setup action {name} failed: {e}");
                    lang.t("action_failed").to_string()
                }
            }
        }
        None => lang.t("unknown_action").to_string(),
    };
    cx.state
        .sessions
        .set_flash(&cx.store, &current.id, &message)?;
    Ok(Response::see_other(&format!("{}#setup", paths::DASHBOARD)))
}

/// `POST /deliveries/replay` with `id`: retries one failed delivery now, then shows the
/// dashboard with the outcome.
pub fn replay_delivery(cx: &mut Context, req: &Request, current: &Current) -> Result<Response> {
    let lang = req.lang();
    let form = req.form();
    let id = form_field(&form, "id").and_then(|v| v.trim().parse::<i64>().ok());
    let replayed = id.map(|id| {
        let targets = &cx.state.config.forward_urls;
        let n = forward::replay(&cx.store, &cx.state.forward_bell, Requeue::One(id), targets);
        (id, n)
    });
    let message = match replayed {
        Some((id, Ok(n))) if n > 0 => lang.t("retry_queued").replace("{id}", &id.to_string()),
        Some((_, Ok(_))) | None => lang.t("retry_missing").to_string(),
        Some((id, Err(e))) => {
            error!("retrying delivery {id} failed: {e}");
            lang.t("action_failed").to_string()
        }
    };
    cx.state
        .sessions
        .set_flash(&cx.store, &current.id, &message)?;
    Ok(Response::see_other(&format!("{}#flash", paths::DASHBOARD)))
}

/// `POST /reply` with `contact` (the list) or `contact_id` (typed) and `text`: sends it
/// through Chatrace and shows the outcome; Chatrace's refusal is shown in its own words.
pub fn send_reply(cx: &mut Context, req: &Request, current: &Current) -> Result<Response> {
    let lang = req.lang();
    let form = req.form();
    let given = |name| {
        form_field(&form, name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    // A typed id wins: it is the way to reach someone the list does not offer.
    let contact = given("contact_id").or_else(|| given("contact"));
    // Browsers send a textarea's line breaks as CRLF; Instagram wants plain newlines.
    let text = form_field(&form, "text")
        .unwrap_or("")
        .replace("\r\n", "\n");
    let message = match contact {
        None => lang.t("reply_no_contact").to_string(),
        Some(contact) => {
            match reply::send(&cx.chatrace(), &cx.store, &cx.state.metrics, contact, &text) {
                Ok(_) => lang.t("reply_sent").to_string(),
                Err(e) => format!("{} {e}", lang.t("reply_failed")),
            }
        }
    };
    cx.state
        .sessions
        .set_flash(&cx.store, &current.id, &message)?;
    // Sent from a thread, the answer shows under that thread.
    let back = form_field(&form, "back").filter(|b| is_thread_path(b));
    Ok(Response::see_other(&format!(
        "{}#flash",
        back.unwrap_or(paths::DASHBOARD)
    )))
}

/// A thread's own path, as the thread's reply form sends it back: nothing else, so the
/// field cannot send the browser anywhere else.
fn is_thread_path(path: &str) -> bool {
    path.strip_prefix(paths::CONTACT_PREFIX).is_some_and(|id| {
        !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b))
    })
}
