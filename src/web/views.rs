//! HTML rendering, the only user of minijinja. The templates are compiled into the binary;
//! their names end in `.html`, so every value is HTML-escaped unless a template says
//! otherwise, and no template ever marks user data safe.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use minijinja::value::{Serde, Value};
use minijinja::{context, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::i18n::Lang;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    (
        "dashboard.html",
        include_str!("../../templates/dashboard.html"),
    ),
    (
        "messages.html",
        include_str!("../../templates/messages.html"),
    ),
    (
        "message_table.html",
        include_str!("../../templates/message_table.html"),
    ),
    ("refused.html", include_str!("../../templates/refused.html")),
];

/// The stylesheet, served at `/static/style.css`: the CSP allows no inline styles.
pub const STYLESHEET: &str = include_str!("../../static/style.css");
pub const SCRIPT: &str = include_str!("../../static/copy.js");

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
