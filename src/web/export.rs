//! The page's downloads: what a thread or a search shows, as CSV or JSON lines, in the
//! export command's formats.

use crate::error::Result;
use crate::export::Writer;
use crate::http::{Request, Response};
use crate::store::Message;

pub use crate::export::Format;

impl Format {
    /// `?format=csv` or `?format=jsonl` (the default).
    pub fn from_query(req: &Request) -> Option<Format> {
        Format::from_name(req.query_param("format").as_deref().unwrap_or("jsonl"))
    }
}

/// A download being written in memory: a thread or a capped search result.
pub struct File {
    writer: Writer<Vec<u8>>,
    format: Format,
}

impl File {
    pub fn new(format: Format) -> Result<File> {
        Ok(File {
            writer: Writer::new(format, Vec::new())?,
            format,
        })
    }

    pub fn add(&mut self, m: &Message) -> Result<()> {
        Ok(self.writer.write(m)?)
    }

    /// The file as a download named `name` plus the format's extension.
    pub fn into_response(self, name: &str) -> Response {
        let (content_type, ext) = match self.format {
            Format::Csv => ("text/csv; charset=utf-8", "csv"),
            Format::JsonLines => ("application/x-ndjson", "jsonl"),
        };
        let body = self.writer.finish().unwrap_or_default();
        Response {
            status: 200,
            headers: vec![
                ("Content-Type", content_type.into()),
                (
                    "Content-Disposition",
                    format!("attachment; filename=\"{name}.{ext}\""),
                ),
                ("Cache-Control", "no-store".into()),
            ],
            body,
        }
    }
}

/// A contact id or query as part of a file name: letters and digits only.
pub fn file_safe(s: &str) -> String {
    let safe: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(40)
        .collect();
    if safe.is_empty() {
        "export".into()
    } else {
        safe
    }
}
