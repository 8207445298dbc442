//! Which token and which account a run uses: a token given in the settings, then the
//! page's sign-in, then the account's API token (tried once); the account given, then
//! chosen on the page, then the login's only one, then the API token's own.

use super::status::{problem, Problem, Status, TokenSource, ACCOUNT_KEY, API_TOKEN_KEY, TOKEN_KEY};
use crate::config::InboxConfig;
use crate::inbox::{Inbox, InboxError};
use crate::metrics::Metrics;
use crate::store::Store;

/// The token and account a run uses, once resolved.
pub struct Access {
    pub token: String,
    pub account_id: String,
}

/// Finds the token (setting, then login, then the API token tried once) and the account
/// (setting, then the page's choice, then the login's only account, then the API token's).
pub fn access(
    store: &Store,
    config: &InboxConfig,
    metrics: Option<&Metrics>,
    status: &mut Status,
) -> std::result::Result<Access, Problem> {
    let stored = store.setting(TOKEN_KEY).ok().flatten();
    let (token, source) = match (&config.token, stored, &config.api_token) {
        (Some(t), _, _) => (t.clone(), TokenSource::Setting),
        (None, Some(t), _) => (t, TokenSource::Login),
        (None, None, Some(t)) => (t.clone(), TokenSource::ApiToken),
        (None, None, None) => return Err(Problem::NoToken),
    };
    status.token_source = Some(source);
    status.token_expires_ms = crate::inbox::token_expiry_ms(&token);
    let fingerprint = crate::chatrace::fingerprint(&config.url, &token);
    if source == TokenSource::ApiToken
        && store.setting(API_TOKEN_KEY).ok().flatten().as_deref() == Some(&*fingerprint)
    {
        return Err(Problem::ApiTokenRefused);
    }
    let inbox = Inbox {
        url: &config.url,
        token: &token,
    };
    let member = counted(metrics, inbox.member()).map_err(|e| match e {
        InboxError::NotSignedIn if source == TokenSource::ApiToken => {
            let _ = store.set_setting(API_TOKEN_KEY, &fingerprint);
            Problem::ApiTokenRefused
        }
        e => problem(e),
    })?;
    status.member_name = member.name.clone();
    status.member_id = member.id.clone();
    status.accounts = member
        .pages
        .iter()
        .map(|p| (p.id.clone(), p.name.clone()))
        .collect();
    let chosen = config
        .account_id
        .clone()
        .or_else(|| store.setting(ACCOUNT_KEY).ok().flatten())
        .or_else(|| match member.pages.as_slice() {
            [only] => Some(only.id.clone()),
            _ => None,
        })
        .or_else(|| api_token_account(config));
    let Some(account_id) = chosen else {
        return Err(Problem::ChooseAccount);
    };
    let account_name = member
        .pages
        .iter()
        .find(|p| p.id == account_id)
        .and_then(|p| p.name.clone());
    status.account_id = Some(account_id.clone());
    status.account_name = account_name;
    Ok(Access { token, account_id })
}

/// The page id the account's API token names (`GET /accounts/me`), when there is one.
fn api_token_account(config: &InboxConfig) -> Option<String> {
    let token = config.api_token.as_deref()?;
    match crate::chatrace::check_token(&config.api_url, Some(token), config.api_timeout) {
        crate::chatrace::TokenCheck::Valid { account } => account.page_id,
        _ => None,
    }
}

/// Counts an inbox call's outcome in the metrics.
pub(super) fn counted<T>(
    metrics: Option<&Metrics>,
    result: std::result::Result<T, InboxError>,
) -> std::result::Result<T, InboxError> {
    if let Some(metrics) = metrics {
        metrics.inbox_call(result.as_ref().err().map_or("ok", InboxError::code));
    }
    result
}
