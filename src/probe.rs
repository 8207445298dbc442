//! The self-probe: the relay fetches its own public webhook URL with a one-time nonce and
//! recognises its own answer, which proves that the public address leads to this process.
//! Also the plain look at a URL (https? a private host?) that needs no request.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::outbound::{self, Failure};
use crate::time::now_ms;

/// Query parameter the probe sends to the webhook endpoint.
pub const PARAM: &str = "relay_probe";
/// Short: a page load waits for it.
const TIMEOUT: Duration = Duration::from_secs(4);
/// A nonce not answered within this time is forgotten.
const NONCE_TTL_MS: i64 = 30_000;
/// Bounds the nonce list if something requests probes in a loop.
const MAX_NONCES: usize = 64;
/// Page loads within this time reuse the last result instead of probing again.
const CACHE_MS: i64 = 60_000;
const EXCERPT_CHARS: usize = 120;
const ANSWER_PREFIX: &str = "chatrace-relay probe";

/// What the probe met at the public URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// This very process answered with the nonce it issued.
    Ours,
    /// A chatrace-relay answered, but not this process (another instance, an old process).
    OtherRelay,
    /// Something else answered: its status and the first bytes (or the redirect target).
    Foreign {
        status: u16,
        excerpt: String,
    },
    Unreachable(Failure),
}

/// Per-process state of the probe; lives in `App`.
pub struct SelfProbe {
    /// Random per process, so an answer from another instance is told apart.
    instance_id: String,
    nonces: Mutex<Vec<(String, i64)>>,
    last: Mutex<Option<(i64, ProbeOutcome)>>,
}

impl SelfProbe {
    pub fn new() -> std::io::Result<SelfProbe> {
        Ok(SelfProbe {
            instance_id: crate::secret::random_hex(12)?,
            nonces: Mutex::new(Vec::new()),
            last: Mutex::new(None),
        })
    }

    /// The webhook endpoint's answer to `?relay_probe=<nonce>`. Only a nonce this process
    /// issued, and only once, gets the instance id: nobody can make the relay vouch for a
    /// URL it did not probe itself.
    pub fn answer(&self, nonce: &str) -> String {
        let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        nonces.retain(|(_, expires)| *expires > now);
        match nonces.iter().position(|(n, _)| n == nonce) {
            Some(i) => {
                nonces.swap_remove(i);
                format!("{ANSWER_PREFIX} {}\n", self.instance_id)
            }
            None => format!("{ANSWER_PREFIX}\n"),
        }
    }

    /// Probes `webhook_url`, or returns the result of a probe less than a minute old.
    /// No lock is held while the request runs: the answer comes from another worker of
    /// this same process, which takes the nonce lock.
    pub fn run(&self, webhook_url: &str) -> ProbeOutcome {
        let now = now_ms();
        if let Some((at, outcome)) = &*self.last.lock().unwrap_or_else(|p| p.into_inner()) {
            if now - at < CACHE_MS {
                return outcome.clone();
            }
        }
        let outcome = self.probe(webhook_url);
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((now_ms(), outcome.clone()));
        outcome
    }

    fn probe(&self, webhook_url: &str) -> ProbeOutcome {
        let nonce = match self.issue() {
            Ok(n) => n,
            Err(e) => return ProbeOutcome::Unreachable(Failure::Other(e.to_string())),
        };
        let url = format!("{webhook_url}?{PARAM}={nonce}");
        match outbound::get(&url, &[("Accept", "text/plain")], TIMEOUT) {
            Ok(reply) => self.recognise(reply.status, reply.header("Location"), &reply.body),
            Err(failure) => ProbeOutcome::Unreachable(failure),
        }
    }

    fn issue(&self) -> std::io::Result<String> {
        let nonce = crate::secret::random_hex(16)?;
        let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        nonces.retain(|(_, expires)| *expires > now);
        if nonces.len() >= MAX_NONCES {
            nonces.remove(0);
        }
        nonces.push((nonce.clone(), now + NONCE_TTL_MS));
        Ok(nonce)
    }

    fn recognise(&self, status: u16, location: Option<&str>, body: &str) -> ProbeOutcome {
        let text = body.trim();
        if status == 200 && text == format!("{ANSWER_PREFIX} {}", self.instance_id) {
            return ProbeOutcome::Ours;
        }
        if status == 200 && text.starts_with(ANSWER_PREFIX) {
            return ProbeOutcome::OtherRelay;
        }
        let excerpt = match location {
            Some(target) => format!("Location: {target}"),
            None => crate::text::excerpt(body.as_bytes(), EXCERPT_CHARS),
        };
        ProbeOutcome::Foreign { status, excerpt }
    }
}

/// What can be told from a public URL alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlConcern {
    /// Chatrace calls https URLs.
    NotHttps,
    /// localhost, a private or link-local address, or a name without a dot: not reachable
    /// from the internet.
    PrivateHost,
}

pub fn url_concerns(url: &str) -> Vec<UrlConcern> {
    let mut concerns = Vec::new();
    if !url.to_ascii_lowercase().starts_with("https://") {
        concerns.push(UrlConcern::NotHttps);
    }
    if is_private_host(&host_of(url)) {
        concerns.push(UrlConcern::PrivateHost);
    }
    concerns
}

/// The host of an http(s) URL, lowercased, without port, user info or IPv6 brackets.
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    host.to_ascii_lowercase()
}

fn is_private_host(host: &str) -> bool {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
        }
        Ok(IpAddr::V6(ip)) => {
            // fc00::/7 is the IPv6 private range, fe80::/10 link-local.
            let first = ip.segments()[0];
            ip.is_loopback()
                || ip.is_unspecified()
                || first & 0xfe00 == 0xfc00
                || first & 0xffc0 == 0xfe80
        }
        Err(_) => {
            host == "localhost"
                || host.ends_with(".localhost")
                || host.ends_with(".local")
                || host.ends_with(".internal")
                || !host.contains('.')
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_hosts_are_spotted() {
        for url in [
            "http://localhost:3000",
            "https://127.0.0.1",
            "https://10.1.2.3/x",
            "https://192.168.0.5:8443",
            "https://172.20.0.1",
            "https://[::1]:3000",
            "https://[fd00::1]",
            "https://myserver",
            "https://user@box.local",
        ] {
            assert!(
                url_concerns(url).contains(&UrlConcern::PrivateHost),
                "{url}"
            );
        }
        assert!(url_concerns("https://relay.example.com").is_empty());
        assert!(url_concerns("https://172.32.0.1:443/").is_empty());
        assert_eq!(
            url_concerns("http://relay.example.com"),
            [UrlConcern::NotHttps]
        );
    }

    #[test]
    fn only_an_issued_nonce_gets_the_instance_id_and_only_once() {
        let probe = SelfProbe::new().unwrap();
        let nonce = probe.issue().unwrap();
        assert_eq!(probe.answer("made-up").trim(), ANSWER_PREFIX);
        let first = probe.answer(&nonce);
        assert!(first.contains(&probe.instance_id));
        assert_eq!(probe.recognise(200, None, &first), ProbeOutcome::Ours);
        assert_eq!(probe.answer(&nonce).trim(), ANSWER_PREFIX);
        assert_eq!(
            probe.recognise(200, None, "chatrace-relay probe 00ff"),
            ProbeOutcome::OtherRelay
        );
        assert_eq!(
            probe.recognise(301, Some("https://x/"), ""),
            ProbeOutcome::Foreign {
                status: 301,
                excerpt: "Location: https://x/".into()
            }
        );
    }
}
