//! The route table: every path, its methods, who may call it (its auth class), and its
//! handler. Auth is checked here, before any handler runs, and the 401, 403, sign-in
//! redirects and 405 answers come from here too; handlers never check auth.

use std::sync::Arc;
use std::time::Instant;

use crate::error::Result;
use crate::http::{Handled, Handler, Request, Response};
use crate::outcome::Refusal;
use crate::paths;
use crate::secret::constant_time_eq;

use super::session::{self, Current};
use super::state::Context;
use super::{
    actions, api, assets, contacts, dashboard, media, messages, search, sign_in, thread, webhook,
};

/// Who may call a route.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// Anyone.
    Public,
    /// The webhook secret, as the header `X-Webhook-Secret` or `?secret=` (Chatrace).
    WebhookSecret,
    /// The admin token as `Authorization: Bearer` (scripts). A browser never sends it on
    /// its own, so these routes are safe from cross-site requests.
    Bearer,
    /// A signed-in browser.
    Session,
    /// A kept attachment: a signed-in browser (the page's previews), the admin token
    /// (scripts), or a link forwarded with a message, signed for its path until it
    /// expires. Never a redirect: a picture cannot follow one to the sign-in form.
    MediaReader,
    /// A signed-in browser posting a form of this relay: CSRF token and origin checked.
    SessionForm,
    /// The sign-in form: the double-submit token of its cookie and the origin checked.
    LoginForm,
}

/// A handler, by what it needs and how it answers.
#[derive(Clone, Copy)]
enum Run {
    Now(fn(&mut Context, &Request) -> Result<Response>),
    /// Needs the signed-in session (its CSRF token goes into the page's forms).
    Signed(fn(&mut Context, &Request, &Current) -> Result<Response>),
    /// May answer later, after a commit.
    Later(fn(&mut Context, &Request) -> Handled),
}

#[derive(Clone, Copy)]
enum Path {
    Exact(&'static str),
    Prefix(&'static str),
}

/// What is recorded about a route's answers, besides what its handler logs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Watch {
    Quiet,
    /// Every answer is timed into the webhook latency metric, refusals included: it is
    /// what Chatrace waits for.
    Timed,
}

struct Route {
    methods: &'static [&'static str],
    path: Path,
    /// Further conditions on the request, for one path served by several handlers.
    when: fn(&Request) -> bool,
    auth: Auth,
    watch: Watch,
    run: Run,
}

const GET: &[&str] = &["GET", "HEAD"];
const GET_ONLY: &[&str] = &["GET"];
const HEAD: &[&str] = &["HEAD"];
const POST: &[&str] = &["POST"];

use paths::*;
use Auth::*;
use Path::{Exact, Prefix};
use Watch::{Quiet, Timed};

#[rustfmt::skip]
const ROUTES: &[Route] = &[
    // Chatrace, Meta and people checking the endpoint.
    Route { methods: POST,     path: Exact(WEBHOOK),          when: always,             auth: WebhookSecret, watch: Timed, run: Run::Later(webhook::receive) },
    Route { methods: GET,      path: Exact(WEBHOOK),          when: webhook::handshake, auth: Public,        watch: Quiet, run: Run::Now(webhook::verify) },
    Route { methods: GET,      path: Exact(WEBHOOK),          when: bare_and_anonymous, auth: Public,        watch: Quiet, run: Run::Now(webhook::endpoint_up) },
    Route { methods: GET,      path: Exact(WEBHOOK),          when: bare,               auth: WebhookSecret, watch: Quiet, run: Run::Now(webhook::secret_right) },
    // A HEAD answers as the GET would, without a body, and never stores.
    Route { methods: HEAD,     path: Exact(WEBHOOK),          when: always,             auth: WebhookSecret, watch: Quiet, run: Run::Now(webhook::secret_right) },
    Route { methods: GET_ONLY, path: Exact(WEBHOOK),          when: always,             auth: WebhookSecret, watch: Quiet, run: Run::Later(webhook::receive) },
    Route { methods: GET,      path: Exact(HEALTH),           when: always,             auth: Public,        watch: Quiet, run: Run::Now(api::healthz) },
    // The team's own software.
    Route { methods: GET_ONLY, path: Exact(STATS),            when: always,             auth: Bearer,        watch: Quiet, run: Run::Now(api::stats) },
    Route { methods: GET_ONLY, path: Exact(API_MESSAGES),     when: search::asked,      auth: Bearer,        watch: Quiet, run: Run::Now(search::api) },
    Route { methods: GET_ONLY, path: Exact(API_MESSAGES),     when: always,             auth: Bearer,        watch: Quiet, run: Run::Now(api::messages) },
    Route { methods: GET_ONLY, path: Exact(API_SETUP),        when: always,             auth: Bearer,        watch: Quiet, run: Run::Now(api::setup) },
    Route { methods: POST,     path: Prefix(API_SETUP_ACTION), when: always,            auth: Bearer,        watch: Quiet, run: Run::Now(api::setup_action) },
    Route { methods: GET_ONLY, path: Exact(API_DELIVERIES),   when: always,             auth: Bearer,        watch: Quiet, run: Run::Now(api::deliveries) },
    Route { methods: POST,     path: Exact(API_REPLAY),       when: always,             auth: Bearer,        watch: Quiet, run: Run::Now(api::replay) },
    Route { methods: POST,     path: Exact(API_REPLY),        when: always,             auth: Bearer,        watch: Quiet, run: Run::Now(api::send_reply) },
    Route { methods: GET,      path: Prefix(MEDIA),           when: always,             auth: MediaReader,   watch: Quiet, run: Run::Now(media::serve) },
    Route { methods: GET_ONLY, path: Exact(METRICS),          when: always,             auth: Bearer,        watch: Quiet, run: Run::Now(api::metrics) },
    // The setup page.
    Route { methods: GET,      path: Exact(DASHBOARD),        when: always,             auth: Session,       watch: Quiet, run: Run::Signed(dashboard::dashboard) },
    Route { methods: GET,      path: Exact(MESSAGES),         when: always,             auth: Session,       watch: Quiet, run: Run::Signed(messages::messages) },
    Route { methods: GET,      path: Exact(CONTACTS),         when: always,             auth: Session,       watch: Quiet, run: Run::Signed(contacts::contacts) },
    Route { methods: GET,      path: Prefix(CONTACT_PREFIX),  when: thread::is_export,  auth: Session,       watch: Quiet, run: Run::Signed(thread::export) },
    Route { methods: GET,      path: Prefix(CONTACT_PREFIX),  when: always,             auth: Session,       watch: Quiet, run: Run::Signed(thread::thread) },
    Route { methods: GET,      path: Exact(SEARCH),           when: always,             auth: Session,       watch: Quiet, run: Run::Signed(search::page) },
    Route { methods: GET,      path: Exact(SEARCH_EXPORT),    when: always,             auth: Session,       watch: Quiet, run: Run::Signed(search::export) },
    Route { methods: GET,      path: Exact(LOGIN),            when: always,             auth: Public,        watch: Quiet, run: Run::Now(sign_in::login_form) },
    Route { methods: POST,     path: Exact(LOGIN),            when: always,             auth: LoginForm,     watch: Quiet, run: Run::Now(sign_in::login) },
    Route { methods: POST,     path: Exact(LOGOUT),           when: always,             auth: SessionForm,   watch: Quiet, run: Run::Signed(sign_in::logout) },
    Route { methods: POST,     path: Prefix(SETUP_ACTION),    when: always,             auth: SessionForm,   watch: Quiet, run: Run::Signed(actions::setup_action) },
    Route { methods: POST,     path: Exact(REPLAY),           when: always,             auth: SessionForm,   watch: Quiet, run: Run::Signed(actions::replay_delivery) },
    Route { methods: POST,     path: Exact(REPLY),            when: always,             auth: SessionForm,   watch: Quiet, run: Run::Signed(actions::send_reply) },
    Route { methods: GET,      path: Exact(LANG),             when: always,             auth: Public,        watch: Quiet, run: Run::Now(sign_in::switch_lang) },
    Route { methods: GET,      path: Exact(STYLESHEET),       when: always,             auth: Public,        watch: Quiet, run: Run::Now(assets::stylesheet) },
    Route { methods: GET,      path: Exact(SCRIPT),           when: always,             auth: Public,        watch: Quiet, run: Run::Now(assets::script) },
    Route { methods: GET,      path: Exact(TIME_SCRIPT),      when: always,             auth: Public,        watch: Quiet, run: Run::Now(assets::time_script) },
];

fn always(_: &Request) -> bool {
    true
}

/// A GET with no fields: someone looking whether the endpoint is up.
fn bare(req: &Request) -> bool {
    !webhook::has_fields(req)
}

fn bare_and_anonymous(req: &Request) -> bool {
    bare(req) && webhook::presented_secret(req).is_none()
}

impl Path {
    fn matches(self, path: &str) -> bool {
        match self {
            Exact(p) => path == p,
            Prefix(p) => path.starts_with(p),
        }
    }
}

impl Handler for Context {
    fn handle(&mut self, req: &Request) -> Result<Handled> {
        let Some(route) = route_of(req) else {
            return Ok(Handled::Now(no_route(self, req)));
        };
        if route.watch == Quiet {
            return dispatch(self, req, route);
        }
        let started = Instant::now();
        let metrics = Arc::clone(&self.state.metrics);
        Ok(match dispatch(self, req, route)? {
            Handled::Now(response) => {
                metrics.webhook_acked(started.elapsed());
                Handled::Now(response)
            }
            Handled::Later(finish) => Handled::Later(Box::new(move |responder| {
                finish(responder.after(move || metrics.webhook_acked(started.elapsed())))
            })),
        })
    }

    fn refused(&mut self, req: &Request, refusal: Refusal, detail: String) {
        webhook::log_rejection(self, req, refusal, detail);
    }
}

/// The first route whose path, method and conditions the request meets.
fn route_of(req: &Request) -> Option<&'static Route> {
    ROUTES
        .iter()
        .filter(|r| r.path.matches(&req.path))
        .filter(|r| r.methods.contains(&req.method.as_str()))
        .find(|r| (r.when)(req))
}

/// Checks who is calling, then runs the route's handler.
fn dispatch(cx: &mut Context, req: &Request, route: &Route) -> Result<Handled> {
    let current = match check(cx, req, route.auth)? {
        Ok(current) => current,
        Err(answer) => return Ok(Handled::Now(answer)),
    };
    Ok(match (route.run, current) {
        (Run::Now(run), _) => Handled::Now(run(cx, req)?),
        (Run::Signed(run), Some(current)) => Handled::Now(run(cx, req, &current)?),
        // A route table entry that needs a session always has a session auth class.
        (Run::Signed(_), None) => Handled::Now(Response::internal_error()),
        (Run::Later(run), _) => run(cx, req),
    })
}

/// No route takes the request: 404 for a path the relay does not serve, 405 for a method a
/// served path does not take. A POST either way is logged as a wrong path: it is how a user
/// learns that Chatrace calls a wrong URL. Other methods are mostly scanners and are not
/// worth a row.
fn no_route(cx: &Context, req: &Request) -> Response {
    let allowed = allowed_methods(&req.path);
    let refusal = if allowed.is_empty() {
        Refusal::WrongPath
    } else {
        Refusal::WrongMethod
    };
    if req.method == "POST" {
        webhook::log_wrong_path(cx, req, refusal);
    }
    match refusal {
        Refusal::WrongMethod => Response::error(refusal.status(), "method not allowed")
            .with_header("Allow", allowed.join(", ")),
        _ => Response::error(refusal.status(), "not found"),
    }
}

fn allowed_methods(path: &str) -> Vec<&'static str> {
    let mut allowed: Vec<&str> = ROUTES
        .iter()
        .filter(|r| r.path.matches(path))
        .flat_map(|r| r.methods.iter().copied())
        .collect();
    allowed.sort_unstable();
    allowed.dedup();
    allowed
}

/// The session when the class gives one; the answer to send instead when the caller may
/// not go on.
fn check(
    cx: &Context,
    req: &Request,
    auth: Auth,
) -> Result<std::result::Result<Option<Current>, Response>> {
    let state = &cx.state;
    Ok(match auth {
        Public => Ok(None),
        WebhookSecret => match webhook::presented_secret(req) {
            None => Err(webhook::refuse(
                cx,
                req,
                Refusal::MissingSecret,
                "no secret: send the header X-Webhook-Secret (or ?secret= in the URL)",
            )),
            // Exactly the secret: nothing trimmed, so `secret ` or `\u{3000}secret` is wrong.
            Some(p) if constant_time_eq(p.as_bytes(), state.webhook_secret.as_bytes()) => Ok(None),
            Some(_) => Err(webhook::refuse(
                cx,
                req,
                Refusal::BadSecret,
                "wrong secret: copy it again from the relay's setup page",
            )),
        },
        Bearer => match bearer(cx, req) {
            Ok(true) => Ok(None),
            Ok(false) => Err(no_bearer()),
            Err(refused) => Err(refused),
        },
        MediaReader => {
            let signed = || {
                let field = |name| req.query_param(name).unwrap_or_default();
                crate::media_link::verify(
                    &state.media_key,
                    &req.path,
                    &field("expires"),
                    &field("sig"),
                    crate::time::now_ms() / 1000,
                )
            };
            match bearer(cx, req) {
                Ok(true) => Ok(None),
                Err(refused) => Err(refused),
                Ok(false) if signed() => Ok(None),
                Ok(false) => match state
                    .sessions
                    .current(&cx.store, req, crate::time::now_ms())?
                {
                    Some(current) => Ok(Some(current)),
                    None => Err(no_bearer()),
                },
            }
        }
        Session => match state
            .sessions
            .current(&cx.store, req, crate::time::now_ms())?
        {
            Some(current) => Ok(Some(current)),
            None => Err(Response::see_other(paths::LOGIN)),
        },
        SessionForm => match state
            .sessions
            .current(&cx.store, req, crate::time::now_ms())?
        {
            None => Err(Response::see_other(paths::LOGIN)),
            Some(current) => {
                let form = req.form();
                let posted = crate::text::form_field(&form, "csrf");
                if session::same_origin(req, state.config.public_url.as_deref())
                    && session::token_matches(posted, &current.csrf)
                {
                    Ok(Some(current))
                } else {
                    Err(sign_in::refused(req, Some(&current))?)
                }
            }
        },
        LoginForm => {
            let expected = req.cookie(session::LOGIN_COOKIE).unwrap_or_default();
            let form = req.form();
            let posted = crate::text::form_field(&form, "csrf");
            if session::same_origin(req, state.config.public_url.as_deref())
                && !expected.is_empty()
                && session::token_matches(posted, &expected)
            {
                Ok(None)
            } else {
                Err(sign_in::refused(req, None)?)
            }
        }
    })
}

/// The admin token as `Authorization: Bearer`: Ok(true) when given and right, Ok(false)
/// when not given. Wrong tokens count against the sign-in throttle: both are guesses at the
/// same token. Once it is reached nothing is compared (429), so a right guess then tells
/// the guesser nothing.
fn bearer(cx: &Context, req: &Request) -> std::result::Result<bool, Response> {
    let Some(given) = req
        .header("Authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Ok(false);
    };
    let sessions = &cx.state.sessions;
    let client = req.client.as_deref().unwrap_or("-");
    let now = crate::time::now_ms();
    if !sessions.login_allowed(client, now) {
        return Err(Response::error(
            429,
            "too many wrong admin tokens lately; try again in a minute",
        )
        .with_header("Retry-After", "60"));
    }
    if constant_time_eq(given.as_bytes(), cx.state.admin_token.as_bytes()) {
        return Ok(true);
    }
    sessions.login_failed(client, now);
    Err(no_bearer())
}

fn no_bearer() -> Response {
    Response::error(
        401,
        "send the admin token as Authorization: Bearer <token> (see `chatrace-relay admin-token`)",
    )
    .with_header("WWW-Authenticate", "Bearer")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, query: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: Vec::new(),
            body: Vec::new(),
            client: None,
        }
    }

    /// Everything that reads or changes data needs a secret, a token or a session: only
    /// the handshake, the health check, the sign-in form and static files are public.
    #[test]
    fn only_harmless_routes_are_public() {
        for route in ROUTES.iter().filter(|r| r.auth == Public) {
            let path = match route.path {
                Exact(p) | Prefix(p) => p,
            };
            assert!(
                [
                    WEBHOOK,
                    HEALTH,
                    LOGIN,
                    LANG,
                    STYLESHEET,
                    SCRIPT,
                    TIME_SCRIPT
                ]
                .contains(&path),
                "{path} is public"
            );
        }
        for route in ROUTES.iter().filter(|r| r.methods == POST) {
            assert!(
                route.auth != Public && route.auth != Session,
                "a POST without CSRF"
            );
        }
    }

    #[test]
    fn the_webhook_get_is_split_by_what_it_carries() {
        let auth = |query: &str| route_of(&request("GET", WEBHOOK, query)).map(|r| r.auth);
        assert!(auth("hub.mode=subscribe&hub.challenge=1") == Some(Public));
        assert!(auth("") == Some(Public));
        assert!(auth("secret=x") == Some(WebhookSecret));
        assert!(auth("contact_id=1&text=hi") == Some(WebhookSecret));
        let head = route_of(&request("HEAD", WEBHOOK, "contact_id=1&text=hi")).unwrap();
        assert!(matches!(head.run, Run::Now(_)), "a HEAD never stores");
        assert!(route_of(&request("DELETE", WEBHOOK, "")).is_none());
    }
}
