//! The inbox row's forms: sign in by emailed code, choose the account, import the last
//! week, sign out. The token a sign-in buys is kept in the database and never shown or
//! logged; neither is the email address.

use log::info;

use super::{Action, Relay};
use crate::catch_up::{self, PendingLogin, ACCOUNT_KEY, LOGIN_KEY, TOKEN_KEY};
use crate::error::Result;
use crate::i18n::Lang;
use crate::inbox::{Inbox, InboxError};
use crate::time::now_ms;

/// How far back the page's history button reaches.
const HISTORY_MS: i64 = 7 * 86_400_000;
/// Longest email address (RFC 5321's path limit) and sign-in code accepted.
const MAX_EMAIL: usize = 254;
const MAX_CODE: usize = 32;

/// Why the row would not offer `action` now, from the settings and the database alone.
pub fn refusal(r: &Relay, action: Action, lang: Lang) -> Result<Option<&'static str>> {
    if r.config.catch_up_every.is_none() {
        return Ok(Some(lang.t("inbox_action_catch_up_inbox_off")));
    }
    let status = catch_up::read_status(r.store);
    Ok(match action {
        Action::InboxSendCode | Action::InboxCheckCode if r.config.inbox.token.is_some() => {
            Some(lang.t("inbox_action_inbox_token_comes_chatrace"))
        }
        Action::InboxCheckCode if r.store.setting(LOGIN_KEY)?.is_none() => {
            Some(lang.t("inbox_action_ask_code_first_type"))
        }
        Action::InboxChooseAccount if status.accounts.is_empty() => {
            Some(lang.t("inbox_action_there_no_account_choose"))
        }
        Action::InboxHistory if status.account_id.is_none() || status.problem.is_some() => {
            Some(lang.t("inbox_action_connect_inbox_first"))
        }
        Action::InboxSignOut if r.store.setting(TOKEN_KEY)?.is_none() => {
            Some(lang.t("inbox_action_relay_keeps_no_inbox"))
        }
        _ => None,
    })
}

pub fn run(r: &Relay, action: Action, input: &str, lang: Lang) -> Result<String> {
    let url = &r.config.inbox.url;
    let input = input.trim();
    match action {
        Action::InboxSendCode => {
            let plausible = input.len() <= MAX_EMAIL
                && input.contains('@')
                && !input.chars().any(|c| c.is_whitespace() || c.is_control());
            if !plausible {
                return Ok(lang.t("inbox_action_not_email_address").into());
            }
            match Inbox::send_code(url, input) {
                Ok(rid) => {
                    let login = PendingLogin {
                        email: input.to_string(),
                        rid,
                        at_ms: now_ms(),
                    };
                    let json = serde_json::to_string(&login).unwrap_or_default();
                    r.store.set_setting(LOGIN_KEY, &json)?;
                    info!("inbox sign-in: Chatrace was asked to mail a code");
                    Ok(format!(
                        "{} {input}. {}",
                        lang.t("inbox_action_chatrace_sent_sign_code"),
                        lang.t("inbox_action_type_inbox_row")
                    ))
                }
                Err(e) => Ok(format!(
                    "{} {}",
                    lang.t("inbox_action_chatrace_did_not_send"),
                    words(&e, url, lang)
                )),
            }
        }
        Action::InboxCheckCode => {
            let Some(login) = r
                .store
                .setting(LOGIN_KEY)?
                .and_then(|json| serde_json::from_str::<PendingLogin>(&json).ok())
            else {
                return Ok(lang.t("inbox_action_ask_code_first").into());
            };
            if input.is_empty()
                || input.len() > MAX_CODE
                || !input.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Ok(lang.t("inbox_action_type_code_email_letters").into());
            }
            match Inbox::check_code(url, &login.rid, input) {
                Ok(token) => {
                    r.store.set_setting(TOKEN_KEY, &token)?;
                    r.store.delete_setting(LOGIN_KEY)?;
                    forget_problem(r);
                    r.catch_up.pull(None);
                    info!("inbox sign-in: signed in; catch-up runs now");
                    Ok(lang.t("inbox_action_signed_chatrace_s_inbox").into())
                }
                Err(e) => Ok(format!(
                    "{} {} {}",
                    lang.t("inbox_action_chatrace_refused_code"),
                    words(&e, url, lang),
                    lang.t("inbox_action_check_ask_new_one")
                )),
            }
        }
        Action::InboxChooseAccount => {
            let status = catch_up::read_status(r.store);
            if !status.accounts.iter().any(|(id, _)| id == input) {
                return Ok(lang.t("inbox_action_type_one_page_ids").into());
            }
            r.store.set_setting(ACCOUNT_KEY, input)?;
            forget_problem(r);
            r.catch_up.pull(None);
            Ok(format!(
                "{} {input}.",
                lang.t("inbox_action_catching_up_account")
            ))
        }
        Action::InboxHistory => {
            r.catch_up.pull(Some(now_ms() - HISTORY_MS));
            Ok(lang.t("inbox_action_catching_up_last_7").into())
        }
        Action::InboxSignOut => {
            r.store.delete_setting(TOKEN_KEY)?;
            r.store.delete_setting(LOGIN_KEY)?;
            catch_up::write_status(r.store, &catch_up::Status::default());
            info!("inbox sign-in: signed out");
            Ok(lang.t("inbox_action_signed_out_inbox_catch").into())
        }
        _ => Ok(String::new()),
    }
}

/// A fresh sign-in or choice replaces whatever stopped the last run.
fn forget_problem(r: &Relay) {
    let mut status = catch_up::read_status(r.store);
    status.problem = None;
    catch_up::write_status(r.store, &status);
}

fn words(e: &InboxError, url: &str, lang: Lang) -> String {
    match e {
        InboxError::NotAnInbox(..) => format!(
            "{url} {} ({e}).",
            lang.t("inbox_action_does_not_answer_like")
        ),
        InboxError::Refused(words) => words.clone(),
        other => other.to_string(),
    }
}
