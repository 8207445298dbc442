//! The rows' buttons: check the token again, send a test webhook, replay failed deliveries,
//! mark the webhook row's problems as seen.
//! A button its row would not offer right now is refused before anything is sent anywhere.

use super::facts::{local_webhook_url, problems_seen_until, token_check, PROBLEMS_SEEN_UNTIL};
use super::rows::replay_offered;
use super::{describe_failure, token_advice, token_verdict, Action, Relay, EXCERPT_CHARS};
use crate::error::Result;
use crate::i18n::Lang;

/// Runs a row's button, with the field its form carries; returns a sentence for the user,
/// shown above the checklist.
pub fn run_action(r: &Relay, action: Action, input: Option<&str>, lang: Lang) -> Result<String> {
    if let Some(why) = refusal(r, action, lang)? {
        return Ok(why.to_string());
    }
    match action {
        Action::InboxSendCode
        | Action::InboxCheckCode
        | Action::InboxChooseAccount
        | Action::InboxHistory
        | Action::InboxSignOut => super::inbox_actions::run(r, action, input.unwrap_or(""), lang),
        Action::SendTest => Ok(send_test(r, lang)),
        Action::ReplayFailed => {
            let n = crate::forward::replay(
                r.store,
                r.forward_bell,
                crate::store::Requeue::Failed { since_ms: i64::MIN },
                &r.config.forward_urls,
            )?;
            Ok(format!(
                "{}: {n}",
                lang.t("actions_deliveries_queued_again")
            ))
        }
        Action::DismissProblems => {
            // Up to the newest problem there is, not to now: one that arrives while the
            // user reads the page is still shown.
            if let Some(newest) = r.store.problems_since(problems_seen_until(r)?, 1)?.first() {
                r.store
                    .set_setting(PROBLEMS_SEEN_UNTIL, &newest.received_at_ms.to_string())?;
            }
            Ok(lang.t("actions_problems_marked_seen").to_string())
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

/// Why the checklist would not offer `action` now, from the settings and the database
/// alone: a stale or forged button must cost no call to Chatrace or the team's app.
fn refusal(r: &Relay, action: Action, lang: Lang) -> Result<Option<&'static str>> {
    let config = r.config;
    Ok(match action {
        Action::InboxSendCode
        | Action::InboxCheckCode
        | Action::InboxChooseAccount
        | Action::InboxHistory
        | Action::InboxSignOut => super::inbox_actions::refusal(r, action, lang)?,
        Action::SendTest => None,
        Action::DismissProblems => {
            let shown = r.store.problems_since(problems_seen_until(r)?, 1)?;
            shown
                .is_empty()
                .then(|| lang.t("actions_there_no_problems_to_dismiss"))
        }
        // The token row offers the button for every token that is set, malformed included.
        Action::RecheckToken => config
            .chatrace_token
            .is_none()
            .then(|| lang.t("actions_there_no_chatrace_api")),
        Action::ReplayFailed if config.forward_urls.is_empty() => {
            Some(lang.t("actions_there_nothing_replay_relay"))
        }
        Action::ReplayFailed => {
            let targets = crate::forward::target_status(r.store, &config.forward_urls)?;
            (!replay_offered(&targets)).then(|| lang.t("actions_there_nothing_replay_no"))
        }
    })
}

/// Posts the sample webhook the way Chatrace would: through the public URL when there is
/// one, which proves the whole path; when that fails, locally too, to tell where it breaks.
/// Each try is a line of its own, so two results never read as one sentence.
fn send_test(r: &Relay, lang: Lang) -> String {
    let local = local_webhook_url(r.addr);
    let mut lines = Vec::new();
    let stored = match r.config.public_webhook_url() {
        None => {
            lines.push(lang.t("actions_no_public_address_set").to_string());
            post_sample(r, "actions_sent_locally", &local, lang, &mut lines)
        }
        Some(public) => {
            if post_sample(r, "actions_sent_publicly", &public, lang, &mut lines) {
                true
            } else {
                let stored = post_sample(r, "actions_sent_locally", &local, lang, &mut lines);
                if stored {
                    lines.push(lang.t("actions_relay_works_address_not").to_string());
                }
                stored
            }
        }
    };
    if stored {
        lines.push(format!(
            "{} {}",
            lang.t("actions_test_not_counted"),
            lang.t("actions_test_reaches_your_app")
        ));
    }
    lines.join("\n")
}

/// Posts the sample to `url` and adds a line saying what happened, introduced by the
/// catalogue entry `how`; returns whether the relay stored it.
fn post_sample(r: &Relay, how: &str, url: &str, lang: Lang, lines: &mut Vec<String>) -> bool {
    let to = format!("{} {url}:", lang.t(how));
    let (stored, outcome) = match crate::sample::post(url, r.webhook_secret) {
        Ok(reply) if (200..300).contains(&reply.status) => (
            true,
            format!(
                "HTTP {}, {}",
                reply.status,
                lang.t("actions_stored_as_test_message")
            ),
        ),
        Ok(reply) => (
            false,
            format!(
                "HTTP {}: {}",
                reply.status,
                crate::text::excerpt(reply.body.as_bytes(), EXCERPT_CHARS)
            ),
        ),
        Err(failure) => (false, describe_failure(&failure, lang)),
    };
    let end = if outcome.ends_with('.') { "" } else { "." };
    lines.push(format!("{to} {outcome}{end}"));
    stored
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::forward::Doorbell;
    use crate::probe::SelfProbe;
    use crate::store::{Attempt, AttemptResult, IngestRequest, IngestRules, Store, Write};
    use std::time::Duration;

    const APP: &str = "http://127.0.0.1:9/hook";

    /// Settings that would reach nothing: port 9 discards, so any call that was made
    /// anyway shows up as a failure in the answer instead of a refusal.
    fn config(token: Option<&str>, forward_urls: &[&str]) -> Config {
        Config {
            listen: "127.0.0.1:0".into(),
            db: ":memory:".into(),
            public_url: None,
            forward_urls: forward_urls.iter().map(|u| u.to_string()).collect(),
            forward_secret: None,
            retry_schedule: Vec::new(),
            forward_timeout: Duration::from_millis(200),
            client_timeout: Duration::from_millis(200),
            dedup_window: Duration::from_secs(2),
            keep_raw: None,
            keep_messages: None,
            workers: 1,
            max_body: 1024,
            max_db_bytes: None,
            webhook_secret: None,
            admin_token: None,
            chatrace_token: token.map(str::to_string),
            chatrace_api_url: "http://127.0.0.1:9".into(),
            chatrace_api_timeout: Duration::from_millis(200),
            inbox: crate::config::InboxConfig::from_flags(Default::default()).unwrap(),
            catch_up_every: None,
            keep_media: None,
            max_media: 1000,
            media_allow_private: false,
            time_zone: crate::zone::Zone::utc(),
        }
    }

    /// Runs `action` against a relay with these settings and a store holding one message
    /// per target, of which `failed` gave up at `APP`.
    fn run(config: &Config, failed: bool, action: Action, lang: Lang) -> String {
        let mut store = Store::open(std::path::Path::new(":memory:")).unwrap();
        let request = IngestRequest::sample("hello", "mid-1");
        let rules = IngestRules {
            forward_targets: config.forward_urls.clone(),
            dedup_window_ms: 2000,
        };
        store
            .write_batch(&[Write::Ingest(&request)], &rules)
            .unwrap();
        if failed {
            let due = store.due_deliveries(APP, i64::MAX, 10).unwrap();
            let attempt = Attempt {
                delivery_id: due[0].id,
                at_ms: 1,
                number: 1,
                result: AttemptResult::Failed {
                    status: Some(410),
                    error: "410 Gone".into(),
                },
            };
            store.record_attempts(&[attempt]).unwrap();
        }
        let relay = Relay {
            config,
            webhook_secret: "secret",
            addr: "127.0.0.1:9".parse().unwrap(),
            started_at_ms: 0,
            probe: &SelfProbe::new().unwrap(),
            forward_bell: &Doorbell::default(),
            catch_up: &crate::catch_up::Trigger::default(),
            store: &store,
        };
        run_action(&relay, action, None, lang).unwrap()
    }

    #[test]
    fn checking_the_token_again_needs_a_token() {
        let none = config(None, &[]);
        let en = run(&none, false, Action::RecheckToken, Lang::En);
        assert!(
            en.starts_with("There is no Chatrace API token to check"),
            "{en}"
        );
        assert!(
            !en.contains("could not be reached"),
            "no call was made: {en}"
        );
        let ru = run(&none, false, Action::RecheckToken, Lang::Ru);
        assert!(ru.contains("токен API Chatrace не задан"), "{ru}");

        // A token of any shape is asked about: here the settings lead nowhere, so the
        // answer is that Chatrace could not be reached.
        let unusual = config(Some("Bearer abc"), &[]);
        let en = run(&unusual, false, Action::RecheckToken, Lang::En);
        assert!(en.contains("could not be reached"), "{en}");
    }

    #[test]
    fn replaying_needs_a_forward_url_and_a_failed_delivery() {
        let nowhere = config(None, &[]);
        let en = run(&nowhere, false, Action::ReplayFailed, Lang::En);
        assert!(en.contains("forwards messages nowhere"), "{en}");
        let ru = run(&nowhere, false, Action::ReplayFailed, Lang::Ru);
        assert!(ru.contains("никуда не пересылает"), "{ru}");

        let forwarding = config(None, &[APP]);
        let en = run(&forwarding, false, Action::ReplayFailed, Lang::En);
        assert!(en.contains("no delivery has failed for good"), "{en}");
        let ru = run(&forwarding, false, Action::ReplayFailed, Lang::Ru);
        assert!(ru.contains("не удавшихся доставок нет"), "{ru}");

        let en = run(&forwarding, true, Action::ReplayFailed, Lang::En);
        assert_eq!(en, "Deliveries queued again: 1");
        let ru = run(&forwarding, true, Action::ReplayFailed, Lang::Ru);
        assert_eq!(ru, "Доставок снова в очереди: 1");
    }
}
