//! The page's view models and their rendering, the only user of minijinja: handlers turn
//! store rows into the plain structs of `dashboard`, `messages`, `sign_in` and `chart`, and
//! `render` fills a template with one. The templates are compiled into the binary; their
//! names end in `.html`, so every value is HTML-escaped unless a template says otherwise,
//! and no template ever marks user data safe.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use minijinja::value::{Serde, Value};
use minijinja::{context, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::http::Request;
use crate::i18n::Lang;
use crate::text::percent_encode;

use super::session::Current;

pub mod chart;
pub mod conversations;
pub mod dashboard;
pub mod messages;
pub mod search;
pub mod sign_in;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../../templates/base.html")),
    ("login.html", include_str!("../../../templates/login.html")),
    (
        "dashboard.html",
        include_str!("../../../templates/dashboard.html"),
    ),
    (
        "messages.html",
        include_str!("../../../templates/messages.html"),
    ),
    (
        "message_table.html",
        include_str!("../../../templates/message_table.html"),
    ),
    (
        "attachment.html",
        include_str!("../../../templates/attachment.html"),
    ),
    (
        "contacts.html",
        include_str!("../../../templates/contacts.html"),
    ),
    (
        "thread.html",
        include_str!("../../../templates/thread.html"),
    ),
    (
        "search.html",
        include_str!("../../../templates/search.html"),
    ),
    (
        "refused.html",
        include_str!("../../../templates/refused.html"),
    ),
];

/// The stylesheet: the CSP allows no inline styles.
pub const STYLESHEET: &str = include_str!("../../../static/style.css");
/// The copy buttons.
pub const SCRIPT: &str = include_str!("../../../static/copy.js");
/// Rewrites the page's `<time>` elements into the viewer's own time zone.
pub const TIME_SCRIPT: &str = include_str!("../../../static/local-time.js");

/// What the frame around every page needs: the header's links and forms.
#[derive(Serialize)]
pub struct Frame {
    pub signed_in: bool,
    /// The session's CSRF token for the header's sign-out form and the page's forms.
    pub csrf: String,
    /// Which navigation link is the current page.
    pub page: &'static str,
    /// The current path and query, percent-encoded, for the language links to come back to.
    pub back: String,
}

impl Frame {
    pub fn new(req: &Request, current: Option<&Current>, page: &'static str) -> Frame {
        let here = if req.query.is_empty() {
            req.path.clone()
        } else {
            format!("{}?{}", req.path, req.query)
        };
        Frame {
            signed_in: current.is_some(),
            csrf: current.map(|c| c.csrf.clone()).unwrap_or_default(),
            page,
            back: percent_encode(&here),
        }
    }
}

fn environment() -> Result<&'static Environment<'static>> {
    static ENV: OnceLock<std::result::Result<Environment<'static>, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Printing a misspelt name fails loudly in tests instead of showing nothing.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(env)
    })
    .as_ref()
    .map_err(|e| Error::Render(e.clone()))
}

/// Renders a page. Besides `data`'s fields, every template sees `lang` (the code), `t` (the
/// string catalogue in that language) and `version`.
pub fn render(name: &str, lang: Lang, data: &impl Serialize) -> Result<String> {
    let catalogue: BTreeMap<&str, &str> = lang.catalogue().collect();
    let ctx = context! {
        lang => lang.code(),
        t => catalogue,
        version => env!("CARGO_PKG_VERSION"),
        ..Value::from(Serde(data))
    };
    environment()?
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| Error::Render(format!("{name}: {e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `t.key` a template prints exists in the catalogue, so no page shows a blank
    /// or fails for want of a translation.
    #[test]
    fn templates_only_use_catalogue_keys() {
        let known: Vec<&str> = Lang::En.catalogue().map(|(k, _)| k).collect();
        for (name, source) in TEMPLATES {
            for (at, _) in source.match_indices("t.") {
                // Skip "chart.title", "result.x"...: only a bare `t` is the catalogue.
                let before = source[..at].chars().last().unwrap_or(' ');
                if before.is_ascii_alphanumeric() || before == '_' || before == '.' {
                    continue;
                }
                let key: String = source[at + 2..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(known.contains(&key.as_str()), "{name} uses unknown t.{key}");
            }
        }
    }

    #[test]
    fn every_template_compiles() {
        let env = environment().unwrap();
        for (name, _) in TEMPLATES {
            env.get_template(name).unwrap();
        }
    }
}
