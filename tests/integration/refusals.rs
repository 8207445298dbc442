//! Every way the relay turns a request away, made through the binary, then read on the
//! setup page in both languages: each shows its own name and hint, never a raw catalogue
//! key such as `reason_bad_framing`.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::pages::Browser;
use crate::util::*;

/// Sends raw bytes, closes the sending side when `cut` (the body stops there), and returns
/// the status of the answer.
fn raw_status(addr: &str, raw: &[u8], cut: bool) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(raw).unwrap();
    if cut {
        stream.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut reader = BufReader::new(stream);
    let status = read_reply(&mut reader).status;
    let _ = reader.read_to_end(&mut Vec::new());
    status
}

#[test]
fn every_refusal_shows_on_the_page_in_both_languages() {
    let relay = Relay::start_args("refusals", &["--max-body", "2000"]);
    let json = [("Content-Type", "application/json")];
    let with_secret = [
        ("Content-Type", "application/json"),
        ("X-Webhook-Secret", SECRET),
    ];
    let webhook = "/instagram/webhook";
    let answers = [
        // missing_secret
        relay.request("POST", webhook, &json, b"{}").status,
        // bad_secret, by header and by Meta's handshake
        relay
            .request(
                "POST",
                webhook,
                &[("X-Webhook-Secret", "wrong"), json[0]],
                b"{}",
            )
            .status,
        relay
            .request(
                "GET",
                &format!("{webhook}?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1"),
                &[],
                b"",
            )
            .status,
        // wrong_path, by path and by method
        relay
            .request("POST", "/webhook", &with_secret, b"{}")
            .status,
        relay
            .request("POST", "/healthz", &with_secret, b"{}")
            .status,
        // malformed
        relay
            .request("POST", webhook, &with_secret, b"{not json")
            .status,
        // too_large, the body and the head
        relay
            .request("POST", webhook, &with_secret, &[b'x'; 3000])
            .status,
        raw_status(
            &relay.addr,
            format!(
                "POST {webhook} HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\nContent-Length: 0\r\n\r\n",
                "f".repeat(70 * 1024)
            )
            .as_bytes(),
            false,
        ),
        // incomplete
        raw_status(
            &relay.addr,
            format!(
                "POST {webhook} HTTP/1.1\r\nHost: x\r\nX-Webhook-Secret: {SECRET}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1500\r\n\r\n{{\"text\":"
            )
            .as_bytes(),
            true,
        ),
        // bad_framing
        raw_status(
            &relay.addr,
            format!(
                "POST {webhook} HTTP/1.1\r\nHost: x\r\nX-Webhook-Secret: {SECRET}\r\n\
                 Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            )
            .as_bytes(),
            false,
        ),
    ];
    assert_eq!(
        answers,
        [401, 401, 403, 404, 405, 400, 413, 431, 400, 400],
        "the answers themselves are unchanged"
    );
    relay.wait_count("SELECT count(*) FROM rejected", answers.len() as i64);
    let reasons = [
        "missing_secret",
        "bad_secret",
        "wrong_path",
        "malformed",
        "too_large",
        "incomplete",
        "bad_framing",
    ];
    assert_eq!(
        relay.count(&format!(
            "SELECT count(DISTINCT reason) FROM rejected WHERE reason IN ('{}')",
            reasons.join("', '")
        )),
        reasons.len() as i64
    );

    let (mut b, _) = Browser::signed_in(&relay);
    for (lang, framing_label) in [
        ("en", "Ambiguous framing"),
        ("ru", "Неоднозначная длина тела"),
    ] {
        let html = b.get(&format!("/?lang={lang}"), &[]).text();
        for reason in reasons {
            assert!(
                html.contains(&format!(r#"data-reason="{reason}""#)),
                "{lang}: no row for {reason}"
            );
        }
        for raw in ["reason_", "hint_"] {
            assert!(
                !html.contains(raw),
                "{lang}: a raw catalogue key {raw}… is shown"
            );
        }
        assert!(html.contains(framing_label), "{lang}: {framing_label}");
    }
}
