//! The export's two formats, for the `export` command and the page's downloads alike:
//! JSON lines (the message JSON of the API) and CSV (formula cells defused).

use std::io::{self, Write};

use crate::store::Message;
use crate::time::format_rfc3339;

/// The CSV header; `source` and `sender` came last, after the columns of 0.1.0.
pub const CSV_HEADER: &str = "id,received_at,sent_at,channel,direction,contact_id,contact_name,username,text,attachments,external_id,source,sender";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Csv,
}

impl Format {
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "jsonl" => Some(Format::JsonLines),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

/// Writes messages one at a time in a format.
pub struct Writer<W: Write> {
    format: Format,
    out: W,
}

impl<W: Write> Writer<W> {
    /// Starts the output (CSV's header line).
    pub fn new(format: Format, mut out: W) -> io::Result<Writer<W>> {
        if format == Format::Csv {
            writeln!(out, "{CSV_HEADER}")?;
        }
        Ok(Writer { format, out })
    }

    pub fn write(&mut self, m: &Message) -> io::Result<()> {
        match self.format {
            Format::Csv => write_csv_row(&mut self.out, m),
            Format::JsonLines => {
                serde_json::to_writer(&mut self.out, m).map_err(io::Error::from)?;
                writeln!(self.out)
            }
        }
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn write_csv_row(out: &mut impl Write, m: &Message) -> io::Result<()> {
    let attachments: Vec<&str> = m.attachments.iter().map(|a| a.url.as_str()).collect();
    let cells = [
        m.id.to_string(),
        format_rfc3339(m.received_at_ms),
        m.sent_at_ms.map(format_rfc3339).unwrap_or_default(),
        m.channel.clone().unwrap_or_default(),
        m.direction.as_str().to_string(),
        m.contact_id.clone(),
        m.contact_name.clone().unwrap_or_default(),
        m.username.clone().unwrap_or_default(),
        m.text.clone().unwrap_or_default(),
        attachments.join(" "),
        m.external_id.clone().unwrap_or_default(),
        m.source.clone(),
        m.sender.clone().unwrap_or_default(),
    ];
    let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
    writeln!(out, "{}", line.join(","))
}

/// Quotes a CSV cell, and defuses text a spreadsheet would run as a formula: message texts
/// come from strangers on the internet.
fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }
}
