//! Downloading one attachment from the URL a webhook named, safely: https only, every hop's
//! host resolved once and its addresses checked (`public_ip`), the connection pinned to the
//! address that was checked (no second lookup a DNS answer could change), redirects
//! followed here so each one is checked the same way (at most three), one deadline for the
//! whole download, a size cap, and a content type that must fit the attachment's type.

use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

const MAX_REDIRECTS: usize = 3;

/// How downloads are limited.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Largest file kept; a bigger one is refused, nothing of it stored.
    pub max_bytes: u64,
    /// For the whole download, redirects included.
    pub timeout: Duration,
    /// Tests and local networks only: loopback, private addresses and plain http allowed.
    pub allow_private: bool,
}

/// A downloaded file.
#[derive(Debug)]
pub struct Fetched {
    /// The media type the server gave, lower case, without parameters.
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Why nothing was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    /// Never to be tried again: not https, a non-public address, too big, a wrong type.
    Refused(String),
    /// The server says the file is not there (any 4xx): a signed link that expired.
    Gone(String),
    /// Worth another try later: timeouts, connection errors, 5xx, 429.
    Retry(String),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Refused(why) | Failed::Gone(why) | Failed::Retry(why) => f.write_str(why),
        }
    }
}

/// Downloads `url`, an attachment of type `kind` (`image`, `video`, `audio`, `voice`,
/// `file`).
pub fn fetch(url: &str, kind: &str, rules: &Rules) -> Result<Fetched, Failed> {
    let deadline = Instant::now() + rules.timeout;
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let uri: Uri = url
            .parse()
            .map_err(|_| Failed::Refused("not a valid URL".into()))?;
        let addr = checked_address(&uri, rules)?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failed::Retry("timed out".into()));
        }
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(left))
            .timeout_connect(Some(left.min(Duration::from_secs(10))))
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent(concat!("chatrace-relay/", env!("CARGO_PKG_VERSION")))
            .build();
        let agent = ureq::Agent::with_parts(config, DefaultConnector::default(), Pinned(addr));
        let mut response = agent.get(&url).call().map_err(|e| retry(&e))?;
        let status = response.status().as_u16();
        match status {
            200 => return read(&mut response, kind, rules),
            301 | 302 | 303 | 307 | 308 => {
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| Failed::Gone(format!("{status} without a Location")))?;
                url = join(&uri, location)?;
            }
            429 | 500..=599 => return Err(Failed::Retry(format!("the server answered {status}"))),
            _ => return Err(Failed::Gone(format!("the server answered {status}"))),
        }
    }
    Err(Failed::Refused(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

/// The one address this hop connects to: the host's addresses are looked up once, and the
/// first that passes is used for the connection itself.
fn checked_address(uri: &Uri, rules: &Rules) -> Result<SocketAddr, Failed> {
    let port = match uri.scheme_str() {
        Some("https") => 443,
        Some("http") if rules.allow_private => 80,
        _ => return Err(Failed::Refused("only https links are fetched".into())),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Failed::Refused("the link has no host".into()))?;
    let port = uri.port_u16().unwrap_or(port);
    // `[::1]` keeps its brackets in the URI, which is how a socket address is written too.
    let addrs = format!("{host}:{port}")
        .to_socket_addrs()
        .map_err(|e| Failed::Retry(format!("host name not found ({e})")))?;
    let mut refused = None;
    for addr in addrs {
        if rules.allow_private || crate::public_ip::is_public(addr.ip()) {
            return Ok(addr);
        }
        refused = Some(addr.ip());
    }
    Err(Failed::Refused(match refused {
        Some(ip) => format!("{ip} is not a public address"),
        None => "the host has no address".into(),
    }))
}

/// A redirect's target, absolute, against the URL it came from.
fn join(base: &Uri, location: &str) -> Result<String, Failed> {
    if location.contains("://") {
        return Ok(location.to_string());
    }
    let scheme = base.scheme_str().unwrap_or("https");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or("");
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Ok(format!("{scheme}://{authority}{location}"));
    }
    Err(Failed::Refused("a redirect to a relative path".into()))
}

fn read(
    response: &mut ureq::http::Response<ureq::Body>,
    kind: &str,
    rules: &Rules,
) -> Result<Fetched, Failed> {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "application/octet-stream".into());
    if !fits(kind, &content_type) {
        return Err(Failed::Refused(format!(
            "a {content_type} answer for an attachment of type {kind}"
        )));
    }
    let declared = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > rules.max_bytes) {
        return Err(too_big(rules));
    }
    let mut bytes = Vec::new();
    response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .reader()
        .take(rules.max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failed::Retry(format!("reading the file failed ({e})")))?;
    if bytes.len() as u64 > rules.max_bytes {
        return Err(too_big(rules));
    }
    Ok(Fetched {
        content_type,
        bytes,
    })
}

fn too_big(rules: &Rules) -> Failed {
    Failed::Refused(format!(
        "larger than the {} MB cap (--max-media)",
        rules.max_bytes.div_ceil(1_000_000)
    ))
}

/// Whether a served type can be the attachment: a picture must come as an image, not as a
/// web page. Generic binary types pass for every kind (many storage services send them).
pub fn fits(kind: &str, content_type: &str) -> bool {
    let generic = matches!(
        content_type,
        "application/octet-stream" | "binary/octet-stream"
    );
    generic
        || match kind {
            "image" => content_type.starts_with("image/"),
            "video" => content_type.starts_with("video/"),
            // Instagram sends voice notes and audio as MP4 files.
            "audio" | "voice" => content_type.starts_with("audio/") || content_type == "video/mp4",
            _ => true,
        }
}

fn retry(e: &ureq::Error) -> Failed {
    match e {
        ureq::Error::Timeout(_) => Failed::Retry("timed out".into()),
        other => Failed::Retry(other.to_string()),
    }
}

/// The resolver ureq asks: always the address already checked.
#[derive(Debug)]
struct Pinned(SocketAddr);

impl Resolver for Pinned {
    fn resolve(
        &self,
        _uri: &Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let mut addrs = self.empty();
        addrs.push(self.0);
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> Rules {
        Rules {
            max_bytes: 1000,
            timeout: Duration::from_secs(1),
            allow_private: false,
        }
    }

    /// Refused before any connection: no address here is ever dialled.
    #[test]
    fn non_public_hosts_are_refused_before_connecting() {
        for url in [
            "https://127.0.0.1/x.jpg",
            "https://[::1]/x.jpg",
            "https://localhost/x.jpg",
            "https://0.0.0.0/x.jpg",
            "https://[::ffff:127.0.0.1]/x.jpg",
            "https://2130706433/x.jpg",
            "https://10.1.2.3/x.jpg",
            "https://172.16.5.4/x.jpg",
            "https://192.168.1.1/x.jpg",
            "https://169.254.169.254/latest/meta-data",
            "https://[fd00::1]/x.jpg",
            "https://[fe80::1]/x.jpg",
        ] {
            let uri: Uri = url.parse().unwrap();
            assert!(
                matches!(checked_address(&uri, &strict()), Err(Failed::Refused(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn only_https_unless_private_is_allowed() {
        let uri: Uri = "http://157.240.1.35/x.jpg".parse().unwrap();
        assert!(matches!(
            checked_address(&uri, &strict()),
            Err(Failed::Refused(_))
        ));
        let uri: Uri = "ftp://157.240.1.35/x.jpg".parse().unwrap();
        assert!(matches!(
            checked_address(&uri, &strict()),
            Err(Failed::Refused(_))
        ));
        let loose = Rules {
            allow_private: true,
            ..strict()
        };
        let uri: Uri = "http://127.0.0.1:9/x.jpg".parse().unwrap();
        assert_eq!(
            checked_address(&uri, &loose).unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        let uri: Uri = "https://157.240.1.35/x.jpg".parse().unwrap();
        assert_eq!(
            checked_address(&uri, &strict()).unwrap(),
            "157.240.1.35:443".parse().unwrap()
        );
    }

    #[test]
    fn redirects_resolve_against_the_hop() {
        let base: Uri = "https://cdn.example/a/b.jpg".parse().unwrap();
        assert_eq!(join(&base, "/c.jpg").unwrap(), "https://cdn.example/c.jpg");
        assert_eq!(join(&base, "//x.example/d").unwrap(), "https://x.example/d");
        assert_eq!(
            join(&base, "http://127.0.0.1/").unwrap(),
            "http://127.0.0.1/"
        );
        assert!(join(&base, "c.jpg").is_err());
    }

    #[test]
    fn content_types_must_fit_the_attachment() {
        assert!(fits("image", "image/jpeg"));
        assert!(!fits("image", "text/html"));
        assert!(!fits("image", "video/mp4"));
        assert!(fits("video", "video/mp4"));
        assert!(fits("voice", "video/mp4"));
        assert!(fits("audio", "audio/mpeg"));
        assert!(!fits("audio", "image/png"));
        assert!(fits("image", "application/octet-stream"));
        assert!(fits("file", "application/pdf"));
    }
}
