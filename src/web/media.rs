//! `GET /media/<sha-256>`: a kept attachment, served by the relay so the page never loads
//! anything from another host and a photo outlives Instagram's link. Photos, videos and
//! audio of common types are shown inline, with byte ranges for players; anything else
//! is a download, so a kept file can never be opened as a page of the relay.

use crate::error::Result;
use crate::http::{Request, Response};
use crate::paths::MEDIA;

use super::state::Context;

/// Types a browser may show in place; the rest is sent as a download.
const INLINE: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/avif",
    "video/mp4",
    "video/webm",
    "video/quicktime",
    "audio/mpeg",
    "audio/mp4",
    "audio/aac",
    "audio/ogg",
    "audio/wav",
    "audio/webm",
    "audio/x-m4a",
];

pub fn serve(cx: &mut Context, req: &Request) -> Result<Response> {
    let name = req.path.strip_prefix(MEDIA).unwrap_or_default();
    if let Some(attachment) = name.strip_prefix("message/") {
        return by_attachment(cx, req, attachment);
    }
    if !is_hash(name) {
        return Ok(Response::error(404, "no such file"));
    }
    file(cx, req, name)
}

/// `/media/message/<id>/<position>`: the link a forwarded message carries, made before its
/// file was kept: the file once it is, else why not (503 while it is still to be fetched).
fn by_attachment(cx: &mut Context, req: &Request, attachment: &str) -> Result<Response> {
    let parsed = attachment
        .split_once('/')
        .and_then(|(id, pos)| Some((id.parse::<i64>().ok()?, pos.parse::<i64>().ok()?)));
    let Some((message_id, position)) = parsed else {
        return Ok(Response::error(404, "no such attachment"));
    };
    Ok(match cx.store.media_state(message_id, position)? {
        Some((state, Some(hash))) if state == "kept" => return file(cx, req, &hash),
        Some((state, _)) if state != "pending" => not_kept(&state),
        // Queued, or not seen by the fetcher yet.
        _ if cx.state.config.keep_media.is_some() => {
            Response::error(503, "not kept yet: try again in a moment")
                .with_header("Retry-After", "10")
        }
        _ => Response::error(404, "not kept: the relay does not keep attachments"),
    })
}

fn not_kept(state: &str) -> Response {
    Response::error(
        404,
        match state {
            "expired" => "expired before it could be kept",
            "refused" => "not kept: an unsafe link, too large or not of its type",
            _ => "no longer kept: evicted to stay under --keep-media",
        },
    )
}

fn file(cx: &mut Context, req: &Request, hash: &str) -> Result<Response> {
    let Some(blob) = cx.store.media(hash)? else {
        return Ok(Response::error(
            404,
            "not kept: never fetched, or evicted to stay under --keep-media",
        ));
    };
    let total = blob.data.len() as u64;
    let inline = INLINE.contains(&blob.content_type.as_str());
    let mut response = Response {
        status: 200,
        headers: vec![
            (
                "Content-Type",
                if inline {
                    blob.content_type.clone()
                } else {
                    "application/octet-stream".into()
                },
            ),
            ("Accept-Ranges", "bytes".into()),
            // Named by its content: it never changes, only its access does.
            ("Cache-Control", "private, max-age=604800, immutable".into()),
        ],
        body: Vec::new(),
    };
    if !inline {
        response.headers.push((
            "Content-Disposition",
            format!("attachment; filename=\"{}\"", &hash[..16]),
        ));
    }
    match req.header("Range").map(|r| range(r, total)) {
        Some(Range::Part(start, end)) => {
            response.status = 206;
            response
                .headers
                .push(("Content-Range", format!("bytes {start}-{end}/{total}")));
            response.body = blob.data[start as usize..=end as usize].to_vec();
        }
        Some(Range::Unsatisfiable) => {
            return Ok(Response::error(416, "the range is outside the file")
                .with_header("Content-Range", format!("bytes */{total}")));
        }
        Some(Range::Whole) | None => response.body = blob.data,
    }
    Ok(response)
}

fn is_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What a `Range` header asks of a file of `total` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// The inclusive byte range to send.
    Part(u64, u64),
    /// Nothing of the file: answered 416.
    Unsatisfiable,
    /// A form not served in part (several ranges, another unit): the whole file.
    Whole,
}

fn range(header: &str, total: u64) -> Range {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Range::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| s.parse::<u64>().ok();
    let (start, end) = match (first.is_empty(), last.is_empty()) {
        // The last N bytes.
        (true, false) => match number(last) {
            Some(0) | None => return Range::Unsatisfiable,
            Some(n) => (total.saturating_sub(n), total.saturating_sub(1)),
        },
        (false, _) => {
            let Some(start) = number(first) else {
                return Range::Unsatisfiable;
            };
            let end = if last.is_empty() {
                total.saturating_sub(1)
            } else {
                match number(last) {
                    Some(end) if end >= start => end.min(total.saturating_sub(1)),
                    _ => return Range::Unsatisfiable,
                }
            };
            (start, end)
        }
        (true, true) => return Range::Unsatisfiable,
    };
    if total == 0 || start >= total {
        return Range::Unsatisfiable;
    }
    Range::Part(start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(range("bytes=0-99", 1000), Range::Part(0, 99));
        assert_eq!(range("bytes=900-", 1000), Range::Part(900, 999));
        assert_eq!(range("bytes=-100", 1000), Range::Part(900, 999));
        assert_eq!(range("bytes=-5000", 1000), Range::Part(0, 999));
        assert_eq!(range("bytes=500-5000", 1000), Range::Part(500, 999));
        assert_eq!(range("bytes=1000-", 1000), Range::Unsatisfiable);
        assert_eq!(range("bytes=5-2", 1000), Range::Unsatisfiable);
        assert_eq!(range("bytes=-0", 1000), Range::Unsatisfiable);
        assert_eq!(range("bytes=x-", 1000), Range::Unsatisfiable);
        assert_eq!(range("bytes=0-1,5-6", 1000), Range::Whole);
        assert_eq!(range("items=0-1", 1000), Range::Whole);
    }

    #[test]
    fn only_hashes_name_files() {
        assert!(is_hash(&"ab".repeat(32)));
        assert!(!is_hash(&"AB".repeat(32)));
        assert!(!is_hash("../../etc/passwd"));
        assert!(!is_hash(""));
    }
}
