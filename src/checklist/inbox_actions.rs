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
        return Ok(Some(lang.pick(
            "Catch-up from the inbox is off (--catch-up-every 0).",
            "Догрузка из инбокса выключена (--catch-up-every 0).",
        )));
    }
    let status = catch_up::read_status(r.store);
    Ok(match action {
        Action::InboxSendCode | Action::InboxCheckCode if r.config.inbox.token.is_some() => {
            Some(lang.pick(
                "The inbox token comes from CHATRACE_INBOX_TOKEN (or its credential): change it there.",
                "Токен инбокса задан в CHATRACE_INBOX_TOKEN (или его credential): меняйте его там.",
            ))
        }
        Action::InboxCheckCode if r.store.setting(LOGIN_KEY)?.is_none() => Some(lang.pick(
            "Ask for a code first: type the email address and press the button.",
            "Сначала запросите код: введите адрес почты и нажмите кнопку.",
        )),
        Action::InboxChooseAccount if status.accounts.is_empty() => Some(lang.pick(
            "There is no account to choose: the login names none.",
            "Выбирать не из чего: вход не называет ни одного аккаунта.",
        )),
        Action::InboxHistory if status.account_id.is_none() || status.problem.is_some() => {
            Some(lang.pick(
                "Connect the inbox first.",
                "Сначала подключите инбокс.",
            ))
        }
        Action::InboxSignOut if r.store.setting(TOKEN_KEY)?.is_none() => Some(lang.pick(
            "The relay keeps no inbox sign-in.",
            "Relay не хранит входа в инбокс.",
        )),
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
                return Ok(lang
                    .pick("That is not an email address.", "Это не адрес почты.")
                    .into());
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
                        lang.pick(
                            "Chatrace sent a sign-in code to",
                            "Chatrace отправил код для входа на"
                        ),
                        lang.pick("Type it in the inbox row.", "Введите его в строке инбокса.")
                    ))
                }
                Err(e) => Ok(format!(
                    "{} {}",
                    lang.pick("Chatrace did not send a code:", "Chatrace не отправил код:"),
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
                return Ok(lang
                    .pick("Ask for a code first.", "Сначала запросите код.")
                    .into());
            };
            if input.is_empty()
                || input.len() > MAX_CODE
                || !input.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Ok(lang
                    .pick(
                        "Type the code from the email, letters and digits only.",
                        "Введите код из письма: только буквы и цифры.",
                    )
                    .into());
            }
            match Inbox::check_code(url, &login.rid, input) {
                Ok(token) => {
                    r.store.set_setting(TOKEN_KEY, &token)?;
                    r.store.delete_setting(LOGIN_KEY)?;
                    forget_problem(r);
                    r.catch_up.pull(None);
                    info!("inbox sign-in: signed in; catch-up runs now");
                    Ok(lang
                        .pick(
                            "Signed in to Chatrace's inbox. Catch-up runs now; reload the page in a few seconds.",
                            "Вход в инбокс Chatrace выполнен. Догрузка уже идёт; обновите страницу через несколько секунд.",
                        )
                        .into())
                }
                Err(e) => Ok(format!(
                    "{} {} {}",
                    lang.pick("Chatrace refused the code:", "Chatrace не принял код:"),
                    words(&e, url, lang),
                    lang.pick(
                        "Check it, or ask for a new one.",
                        "Проверьте его или запросите новый."
                    )
                )),
            }
        }
        Action::InboxChooseAccount => {
            let status = catch_up::read_status(r.store);
            if !status.accounts.iter().any(|(id, _)| id == input) {
                return Ok(lang
                    .pick(
                        "Type one of the page ids listed in the row.",
                        "Введите один из page id, перечисленных в строке.",
                    )
                    .into());
            }
            r.store.set_setting(ACCOUNT_KEY, input)?;
            forget_problem(r);
            r.catch_up.pull(None);
            Ok(format!(
                "{} {input}.",
                lang.pick("Catching up account", "Догружается аккаунт")
            ))
        }
        Action::InboxHistory => {
            r.catch_up.pull(Some(now_ms() - HISTORY_MS));
            Ok(lang
                .pick(
                    "Catching up the last 7 days in the background; the row says when it is done. Older messages are not pushed to your app, but /api/messages lists them.",
                    "Последние 7 дней догружаются в фоне; строка покажет, когда готово. Старые сообщения не отправляются в ваше приложение, но есть в /api/messages.",
                )
                .into())
        }
        Action::InboxSignOut => {
            r.store.delete_setting(TOKEN_KEY)?;
            r.store.delete_setting(LOGIN_KEY)?;
            catch_up::write_status(r.store, &catch_up::Status::default());
            info!("inbox sign-in: signed out");
            Ok(lang
                .pick(
                    "Signed out of the inbox: catch-up stops until you sign in again.",
                    "Выход из инбокса выполнен: догрузка остановлена до нового входа.",
                )
                .into())
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
            lang.pick(
                "does not answer like Chatrace's inbox; on a white-label, set CHATRACE_INBOX_URL to https://<your app's domain>/php/user",
                "отвечает не как инбокс Chatrace; для white-label задайте CHATRACE_INBOX_URL = https://<домен вашего приложения>/php/user",
            )
        ),
        InboxError::Refused(words) => words.clone(),
        other => other.to_string(),
    }
}
