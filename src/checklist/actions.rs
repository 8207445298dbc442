//! The rows' buttons: check the token again, send a test webhook, replay failed deliveries.

use super::facts::{local_webhook_url, token_check};
use super::{describe_failure, token_advice, token_verdict, Action, Relay, EXCERPT_CHARS};
use crate::error::Result;
use crate::i18n::Lang;

/// Runs a row's button; returns a sentence for the user, shown above the checklist.
pub fn run_action(r: &Relay, action: Action, lang: Lang) -> Result<String> {
    match action {
        Action::SendTest => Ok(send_test(r, lang)),
        Action::ReplayFailed => {
            let n = crate::forward::replay(
                r.store,
                r.forward_bell,
                crate::store::Requeue::Failed { since_ms: i64::MIN },
            )?;
            Ok(format!(
                "{}: {n}",
                lang.pick("Deliveries queued again", "Доставок снова в очереди")
            ))
        }
        Action::RecheckToken => {
            let (check, _) = token_check(r, true)?;
            Ok(if check.is_valid() {
                token_verdict(&check, lang)
            } else {
                format!(
                    "{} {}",
                    token_verdict(&check, lang),
                    token_advice(&check, lang)
                )
            })
        }
    }
}

/// Posts the sample webhook the way Chatrace would: through the public URL when there is
/// one, which proves the whole path; when that fails, locally too, to tell where it breaks.
fn send_test(r: &Relay, lang: Lang) -> String {
    let local = local_webhook_url(r.addr);
    let Some(public) = r.config.public_webhook_url() else {
        return format!(
            "{} {}",
            lang.pick(
                "No public address is set, so the test went to the local address.",
                "Публичный адрес не задан, поэтому тест отправлен на локальный адрес."
            ),
            post_sample(r, &local, lang).1
        );
    };
    let (ok, outcome) = post_sample(r, &public, lang);
    if ok {
        return outcome;
    }
    format!("{outcome} {}", post_sample(r, &local, lang).1)
}

/// Whether the relay stored it, and a sentence saying what happened.
fn post_sample(r: &Relay, url: &str, lang: Lang) -> (bool, String) {
    let to = format!("{} {url}:", lang.pick("Sent to", "Отправлено на"));
    match crate::sample::post(url, r.webhook_secret) {
        Ok(reply) if (200..300).contains(&reply.status) => (
            true,
            format!(
                "{to} HTTP {}. {} {}",
                reply.status,
                lang.pick(
                    "The relay stored it as a test message (not counted in stats). Its answer:",
                    "Relay сохранил его как тестовое сообщение (в статистике не учитывается). Его ответ:"
                ),
                crate::text::excerpt(reply.body.as_bytes(), EXCERPT_CHARS)
            ),
        ),
        Ok(reply) => (
            false,
            format!(
                "{to} HTTP {}: {}",
                reply.status,
                crate::text::excerpt(reply.body.as_bytes(), EXCERPT_CHARS)
            ),
        ),
        Err(failure) => (false, format!("{to} {}", describe_failure(&failure, lang))),
    }
}
