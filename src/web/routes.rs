//! The route table: every path, its methods, who may call it (its auth class), and its
//! handler. Auth is checked here, before any handler runs, and the 401, 403, sign-in
//! redirects and 405 answers come from here too; handlers never check auth.

use std::sync::Arc;
use std::time::Instant;

use crate::error::Result;
use crate::secret::constant_time_eq;

use super::request::{Handled, Request, Response};
use super::server::Handler;
use super::session::{self, Current};
use super::state::Context;
use super::{api, pages, webhook};

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

struct Route {
    methods: &'static [&'static str],
    path: Path,
    /// Further conditions on the request, for one path served by several handlers.
    when: fn(&Request) -> bool,
    auth: Auth,
    run: Run,
}

const GET: &[&str] = &["GET", "HEAD"];
const GET_ONLY: &[&str] = &["GET"];
const POST: &[&str] = &["POST"];
const WEBHOOK: &str = "/instagram/webhook";

use Auth::*;
use Path::{Exact, Prefix};

#[rustfmt::skip]
const ROUTES: &[Route] = &[
    // Chatrace, Meta and people checking the endpoint.
    Route { methods: POST,     path: Exact(WEBHOOK),                  when: always,             auth: WebhookSecret, run: Run::Later(webhook::receive) },
    Route { methods: GET,      path: Exact(WEBHOOK),                  when: webhook::handshake, auth: Public,        run: Run::Now(webhook::verify) },
    Route { methods: GET,      path: Exact(WEBHOOK),                  when: bare_and_anonymous, auth: Public,        run: Run::Now(webhook::endpoint_up) },
    Route { methods: GET,      path: Exact(WEBHOOK),                  when: bare,               auth: WebhookSecret, run: Run::Now(webhook::secret_right) },
    Route { methods: GET,      path: Exact(WEBHOOK),                  when: always,             auth: WebhookSecret, run: Run::Later(webhook::receive) },
    Route { methods: GET,      path: Exact("/healthz"),               when: always,             auth: Public,        run: Run::Now(api::healthz) },
    // The team's own software.
    Route { methods: GET_ONLY, path: Exact("/instagram/stats"),       when: always,             auth: Bearer,        run: Run::Now(api::stats) },
    Route { methods: GET_ONLY, path: Exact("/api/messages"),          when: always,             auth: Bearer,        run: Run::Now(api::messages) },
    Route { methods: GET_ONLY, path: Exact("/api/setup"),             when: always,             auth: Bearer,        run: Run::Now(api::setup) },
    Route { methods: POST,     path: Prefix(api::SETUP_ACTION_PREFIX), when: always,            auth: Bearer,        run: Run::Now(api::setup_action) },
    Route { methods: GET_ONLY, path: Exact("/api/deliveries"),        when: always,             auth: Bearer,        run: Run::Now(api::deliveries) },
    Route { methods: POST,     path: Exact("/api/deliveries/replay"), when: always,             auth: Bearer,        run: Run::Now(api::replay) },
    Route { methods: POST,     path: Exact("/api/messages/reply"),    when: always,             auth: Bearer,        run: Run::Now(api::send_reply) },
    Route { methods: GET_ONLY, path: Exact("/metrics"),               when: always,             auth: Bearer,        run: Run::Now(api::metrics) },
    // The setup page.
    Route { methods: GET,      path: Exact("/"),                      when: always,             auth: Session,       run: Run::Signed(pages::dashboard) },
    Route { methods: GET,      path: Exact("/messages"),              when: always,             auth: Session,       run: Run::Signed(pages::messages) },
    Route { methods: GET,      path: Exact("/login"),                 when: always,             auth: Public,        run: Run::Now(pages::login_form) },
    Route { methods: POST,     path: Exact("/login"),                 when: always,             auth: LoginForm,     run: Run::Now(pages::login) },
    Route { methods: POST,     path: Exact("/logout"),                when: always,             auth: SessionForm,   run: Run::Signed(pages::logout) },
    Route { methods: POST,     path: Prefix(pages::SETUP_ACTION_PREFIX), when: always,          auth: SessionForm,   run: Run::Signed(pages::setup_action) },
    Route { methods: POST,     path: Exact("/deliveries/replay"),     when: always,             auth: SessionForm,   run: Run::Signed(pages::replay_delivery) },
    Route { methods: POST,     path: Exact("/reply"),                 when: always,             auth: SessionForm,   run: Run::Signed(pages::send_reply) },
    Route { methods: GET,      path: Exact("/lang"),                  when: always,             auth: Public,        run: Run::Now(pages::switch_lang) },
    Route { methods: GET,      path: Exact("/static/style.css"),      when: always,             auth: Public,        run: Run::Now(pages::stylesheet) },
    Route { methods: GET,      path: Exact("/static/copy.js"),        when: always,             auth: Public,        run: Run::Now(pages::script) },
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
        // Every answer of the webhook is timed, refusals included: it is what Chatrace waits
        // for.
        if req.path == WEBHOOK && req.method == "POST" {
            let started = Instant::now();
            let metrics = Arc::clone(&self.state.metrics);
            return Ok(match dispatch(self, req)? {
                Handled::Now(response) => {
                    metrics.webhook_acked(started.elapsed());
                    Handled::Now(response)
                }
                Handled::Later(finish) => Handled::Later(Box::new(move |responder| {
                    finish(responder.after(move || metrics.webhook_acked(started.elapsed())))
                })),
            });
        }
        dispatch(self, req)
    }

    fn refused(&mut self, req: &Request, reason: &'static str, detail: String) {
        webhook::log_rejection(self, req, reason, detail);
    }
}

fn dispatch(cx: &mut Context, req: &Request) -> Result<Handled> {
    let on_path = || ROUTES.iter().filter(|r| r.path.matches(&req.path));
    let Some(route) = on_path()
        .filter(|r| r.methods.contains(&req.method.as_str()))
        .find(|r| (r.when)(req))
    else {
        if on_path().next().is_none() {
            return Ok(Handled::Now(webhook::not_found(cx, req)));
        }
        return Ok(Handled::Now(method_not_allowed(cx, req)));
    };
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
                "missing_secret",
                "no secret: send the header X-Webhook-Secret (or ?secret= in the URL)",
            )),
            // Exactly the secret: nothing trimmed, so `secret ` or `\u{3000}secret` is wrong.
            Some(p) if constant_time_eq(p.as_bytes(), state.webhook_secret.as_bytes()) => Ok(None),
            Some(_) => Err(webhook::refuse(
                cx,
                req,
                "bad_secret",
                "wrong secret: copy it again from the relay's setup page",
            )),
        },
        Bearer => {
            // Wrong tokens count against the sign-in throttle: both are guesses at the
            // same token. Once it is reached nothing is compared, so a right guess then
            // tells the guesser nothing.
            let client = req.client.as_deref().unwrap_or("-");
            let now = crate::time::now_ms();
            let given = req
                .header("Authorization")
                .and_then(|v| v.strip_prefix("Bearer "));
            if given.is_some() && !state.sessions.login_allowed(client, now) {
                return Ok(Err(Response::error(
                    429,
                    "too many wrong admin tokens lately; try again in a minute",
                )
                .with_header("Retry-After", "60")));
            }
            match given {
                Some(t) if constant_time_eq(t.as_bytes(), state.admin_token.as_bytes()) => Ok(None),
                _ => {
                    if given.is_some() {
                        state.sessions.login_failed(client, now);
                    }
                    Err(Response::error(
                        401,
                        "send the admin token as Authorization: Bearer <token> (see `chatrace-relay admin-token`)",
                    )
                    .with_header("WWW-Authenticate", "Bearer"))
                }
            }
        }
        Session => match state.sessions.current(req, crate::time::now_ms()) {
            Some(current) => Ok(Some(current)),
            None => Err(pages::see_other("/login")),
        },
        SessionForm => match state.sessions.current(req, crate::time::now_ms()) {
            None => Err(pages::see_other("/login")),
            Some(current) => {
                let form = req.form();
                let posted = crate::text::form_field(&form, "csrf");
                if session::same_origin(req, state.config.public_url.as_deref())
                    && session::token_matches(posted, &current.csrf)
                {
                    Ok(Some(current))
                } else {
                    Err(pages::refused(req, Some(&current))?)
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
                Err(pages::refused(req, None)?)
            }
        }
    })
}

/// A known path asked with a method it does not take. A POST is also logged like one to an
/// unknown path: it is how a user learns that Chatrace calls a wrong URL.
fn method_not_allowed(cx: &Context, req: &Request) -> Response {
    if req.method == "POST" {
        webhook::log_wrong_path(cx, req);
    }
    let mut allowed: Vec<&str> = ROUTES
        .iter()
        .filter(|r| r.path.matches(&req.path))
        .flat_map(|r| r.methods.iter().copied())
        .collect();
    allowed.sort_unstable();
    allowed.dedup();
    Response::error(405, "method not allowed").with_header("Allow", allowed.join(", "))
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

    fn route_of(req: &Request) -> Option<&'static Route> {
        ROUTES
            .iter()
            .filter(|r| r.path.matches(&req.path))
            .filter(|r| r.methods.contains(&req.method.as_str()))
            .find(|r| (r.when)(req))
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
                    "/healthz",
                    "/login",
                    "/lang",
                    "/static/style.css",
                    "/static/copy.js"
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
        assert!(route_of(&request("DELETE", WEBHOOK, "")).is_none());
    }
}
