//! Who is reading: the sign-in form and its post, signing out, the page that refuses a form
//! failing its CSRF or origin check, and the reader's choice of language.

use log::{info, warn};

use crate::error::Result;
use crate::http::{cookie, Cookie, Request, Response, LANG_COOKIE};
use crate::i18n::Lang;
use crate::paths;
use crate::secret::constant_time_eq;
use crate::text::form_field;
use crate::time::now_ms;

use super::session::{self, Current, COOKIE, LOGIN_COOKIE};
use super::state::Context;
use super::views::sign_in::{Login, Refused};
use super::views::{self, Frame};

/// The language cookie lasts a year: it is a preference, not a secret.
const LANG_MAX_AGE_S: i64 = 365 * 86_400;

const LOGIN_MAX_AGE_S: i64 = 3600;

/// 403 for a form that failed the CSRF or origin check.
pub fn refused(req: &Request, current: Option<&Current>) -> Result<Response> {
    let lang = req.lang();
    let page = Refused {
        frame: Frame::new(req, current, ""),
        message: lang.t("refused_csrf"),
    };
    Ok(Response::html(
        403,
        views::render("refused.html", lang, &page)?,
    ))
}

/// `sudo chatrace-relay admin-token --db /var/lib/chatrace-relay/chatrace-relay.db` for the
/// unit: run elsewhere without the path, the command would find no database. The path is
/// made absolute but its symlinks are kept: the unit's `/var/lib/chatrace-relay` is
/// systemd's link to `/var/lib/private/chatrace-relay`, and the link is the name the
/// README, the package and the log use.
fn token_command(cx: &Context) -> String {
    let db = &cx.state.config.db;
    let full = std::path::absolute(db).unwrap_or_else(|_| db.clone());
    let path = full.display().to_string();
    let quoted = if path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
    {
        path
    } else {
        format!("'{}'", path.replace('\'', r"'\''"))
    };
    format!("sudo chatrace-relay admin-token --db {quoted}")
}

/// `GET /login`.
pub fn login_form(cx: &mut Context, req: &Request) -> Result<Response> {
    if cx
        .state
        .sessions
        .current(&cx.store, req, now_ms())?
        .is_some()
    {
        return Ok(Response::see_other(paths::DASHBOARD));
    }
    // Reusing a token the browser already holds keeps a second open tab's form valid.
    let token = match req.cookie(LOGIN_COOKIE) {
        Some(t) if session::looks_like_token(&t) => t,
        _ => session::new_token()?,
    };
    let page = Login {
        frame: Frame::new(req, None, "login"),
        login_csrf: token.clone(),
        error: None,
        token_command: token_command(cx),
    };
    Ok(
        Response::html(200, views::render("login.html", req.lang(), &page)?).with_header(
            "Set-Cookie",
            cookie(
                LOGIN_COOKIE,
                &token,
                Cookie::Private,
                cx.secure_cookies(),
                Some(LOGIN_MAX_AGE_S),
            ),
        ),
    )
}

/// `POST /login`: the admin token from the form starts a session. The route table has
/// already checked the form's CSRF token and origin.
pub fn login(cx: &mut Context, req: &Request) -> Result<Response> {
    let lang = req.lang();
    let form = req.form();
    let expected = req.cookie(LOGIN_COOKIE).unwrap_or_default();
    let client = req.client.clone().unwrap_or_else(|| "-".into());
    let now = now_ms();
    let again = |status: u16, error: &'static str| -> Result<Response> {
        let page = Login {
            frame: Frame::new(req, None, "login"),
            login_csrf: expected.clone(),
            error: Some(error),
            token_command: token_command(cx),
        };
        Ok(Response::html(
            status,
            views::render("login.html", lang, &page)?,
        ))
    };
    let sessions = &cx.state.sessions;
    if !sessions.login_allowed(&client, now) {
        return again(429, lang.t("login_throttled"));
    }
    // A pasted token may bring a line break or a space along; nothing else is forgiven.
    let token = form_field(&form, "token")
        .unwrap_or("")
        .trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
    if !constant_time_eq(token.as_bytes(), cx.state.admin_token.as_bytes()) {
        sessions.login_failed(&client, now);
        warn!("failed sign-in to the setup page from {client}");
        return again(401, lang.t("login_wrong"));
    }
    sessions.login_succeeded(&client);
    let current = sessions.create(&cx.store, now)?;
    info!("signed in to the setup page from {client}");
    let secure = cx.secure_cookies();
    Ok(Response::see_other(paths::DASHBOARD)
        .with_header(
            "Set-Cookie",
            cookie(COOKIE, &current.id, Cookie::Private, secure, None),
        )
        .with_header(
            "Set-Cookie",
            cookie(LOGIN_COOKIE, "", Cookie::Private, secure, Some(0)),
        ))
}

/// `POST /logout`.
pub fn logout(cx: &mut Context, _req: &Request, current: &Current) -> Result<Response> {
    cx.state.sessions.remove(&cx.store, &current.id)?;
    Ok(Response::see_other(paths::LOGIN).with_header(
        "Set-Cookie",
        cookie(COOKIE, "", Cookie::Private, cx.secure_cookies(), Some(0)),
    ))
}

/// `GET /lang?to=ru&back=/messages`: remembers the choice and returns to the page. A link,
/// so it works without script; `back` must be a path on this site (no open redirect).
pub fn switch_lang(cx: &mut Context, req: &Request) -> Result<Response> {
    let back = req
        .query_param("back")
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        // A Location header carries ASCII only; anything else falls back to the start page.
        .filter(|b| b.bytes().all(|c| c.is_ascii_graphic()))
        .unwrap_or_else(|| "/".into());
    let mut answer = Response::see_other(&back);
    if let Some(lang) = req.query_param("to").and_then(|c| Lang::from_code(&c)) {
        let preference = cookie(
            LANG_COOKIE,
            lang.code(),
            Cookie::Preference,
            cx.secure_cookies(),
            Some(LANG_MAX_AGE_S),
        );
        answer = answer.with_header("Set-Cookie", preference);
    }
    Ok(answer)
}
