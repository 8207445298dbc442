//! Full-text search as text, with no storage: the words a person typed turned into an FTS5
//! query that cannot be read as FTS5 syntax (each word a quoted string, the last one a
//! prefix), and the highlighted excerpt of a found text, built here from plain segments so
//! the page escapes every character of it.

/// Words of a query that are searched for; the rest are ignored (a 10 KB query is answered
/// from its first words).
pub const MAX_WORDS: usize = 16;
/// Characters of a word that count; longer words are cut.
const MAX_WORD_CHARS: usize = 64;
/// A last word this short is matched whole, not as a prefix: a one-letter prefix matches
/// most of the index.
const MIN_PREFIX_CHARS: usize = 2;

/// A parsed query: its words, folded the way the index folds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    words: Vec<String>,
    prefix_last: bool,
}

impl Query {
    /// The words of `text`: split on anything that is not a letter or a digit, as the
    /// index's tokenizer splits, so no character of the query is ever syntax.
    pub fn parse(text: &str) -> Query {
        let mut words: Vec<String> = tokens(text)
            .map(|(_, w)| fold(w).chars().take(MAX_WORD_CHARS).collect::<String>())
            .filter(|w| !w.is_empty())
            .take(MAX_WORDS)
            .collect();
        words.dedup();
        let prefix_last = words
            .last()
            .is_some_and(|w| w.chars().count() >= MIN_PREFIX_CHARS);
        Query { words, prefix_last }
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The FTS5 MATCH expression: every word as a quoted string (a `"` inside doubled),
    /// all of them required, the last one also as a prefix.
    pub fn fts_match(&self) -> Option<String> {
        if self.words.is_empty() {
            return None;
        }
        let last = self.words.len() - 1;
        let terms: Vec<String> = self
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let quoted = format!("\"{}\"", w.replace('"', "\"\""));
                if i == last && self.prefix_last {
                    quoted + "*"
                } else {
                    quoted
                }
            })
            .collect();
        Some(terms.join(" AND "))
    }

    /// Whether a word of a text (folded) is one the query looks for.
    fn matches(&self, folded: &str) -> bool {
        let last = self.words.len().saturating_sub(1);
        self.words.iter().enumerate().any(|(i, w)| {
            folded == w || (i == last && self.prefix_last && folded.starts_with(w.as_str()))
        })
    }

    /// `text` cut to about `max_chars` around its first match, as segments: (text,
    /// whether it is a match). The page prints each segment escaped, marks the matches.
    pub fn highlight(&self, text: &str, max_chars: usize) -> Vec<Segment> {
        let hits: Vec<(usize, usize)> = tokens(text)
            .filter(|(_, w)| self.matches(&fold(w)))
            .map(|(at, w)| (at, at + w.len()))
            .collect();
        // The window: from a little before the first match, `max_chars` characters long.
        let first = hits.first().map_or(0, |h| h.0);
        let offsets: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        let first_char = offsets.partition_point(|&i| i < first);
        let start_char = first_char.saturating_sub(max_chars / 4);
        let end_char = start_char.saturating_add(max_chars);
        let start = offsets.get(start_char).copied().unwrap_or(text.len());
        let end = offsets.get(end_char).copied().unwrap_or(text.len());
        let mut segments = Vec::new();
        if start > 0 {
            segments.push(Segment::plain("…"));
        }
        let mut at = start;
        for &(from, to) in hits.iter().filter(|h| h.0 >= start && h.1 <= end) {
            if from > at {
                segments.push(Segment::plain(&text[at..from]));
            }
            segments.push(Segment {
                text: text[from..to].to_string(),
                mark: true,
            });
            at = to;
        }
        if end > at {
            segments.push(Segment::plain(&text[at..end]));
        }
        if end < text.len() {
            segments.push(Segment::plain("…"));
        }
        segments
    }
}

/// A piece of a highlighted text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Segment {
    pub text: String,
    pub mark: bool,
}

impl Segment {
    fn plain(text: &str) -> Segment {
        Segment {
            text: text.to_string(),
            mark: false,
        }
    }
}

/// The words of a text with their byte offsets: runs of letters and digits.
fn tokens(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = text.char_indices().peekable();
    std::iter::from_fn(move || {
        while rest.peek().is_some_and(|(_, c)| !c.is_alphanumeric()) {
            rest.next();
        }
        let (start, _) = *rest.peek()?;
        let mut end = start;
        while let Some(&(i, c)) = rest.peek() {
            if !c.is_alphanumeric() {
                break;
            }
            end = i + c.len_utf8();
            rest.next();
        }
        Some((start, &text[start..end]))
    })
}

/// Lower case, and Latin letters without their accents: what the index's `unicode61
/// remove_diacritics 2` does to the letters people type (Cyrillic keeps й and ё, as the
/// index does).
fn fold(word: &str) -> String {
    word.chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            match u32::from(c) {
                0xE0..=0xFF => LATIN_1.chars().nth((u32::from(c) - 0xE0) as usize),
                0x100..=0x17F => LATIN_EXTENDED_A
                    .chars()
                    .nth((u32::from(c) - 0x100) as usize),
                _ => None,
            }
            .unwrap_or(c)
        })
        .collect()
}

/// U+00E0 to U+00FF without accents.
const LATIN_1: &str = "aaaaaaæceeeeiiiiðnooooo÷ouuuuyþy";
/// U+0100 to U+017F without accents.
const LATIN_EXTENDED_A: &str = "aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiiiĳĳjjkkĸllllllllllnnnnnnŉŋŋooooooœœrrrrrrssssssssttttttuuuuuuuuuuuuwwyyyzzzzzzſ";

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(segments: &[Segment]) -> String {
        segments
            .iter()
            .map(|s| {
                if s.mark {
                    format!("[{}]", s.text)
                } else {
                    s.text.clone()
                }
            })
            .collect()
    }

    #[test]
    fn the_tables_cover_their_ranges() {
        assert_eq!(LATIN_1.chars().count(), 32);
        assert_eq!(LATIN_EXTENDED_A.chars().count(), 128);
        assert_eq!(fold("CAFÉ Łódź ДОСТАВКА Ёлка"), "cafe lodz доставка ёлка");
    }

    #[test]
    fn every_word_is_a_quoted_string_and_the_last_a_prefix() {
        let q = Query::parse(r#"  Доставка "NEAR(a b)" -x * OR"#);
        assert_eq!(
            q.fts_match().unwrap(),
            r#""доставка" AND "near" AND "a" AND "b" AND "x" AND "or"*"#
        );
        assert!(Query::parse(r#"" * - ( ) ^ :"#).is_empty());
        assert_eq!(Query::parse("я").fts_match().unwrap(), r#""я""#);
        let long = "слово ".repeat(2000);
        assert_eq!(Query::parse(&long).words.len(), 1, "repeats count once");
        let many: String = (0..5000).map(|i| format!("w{i} ")).collect();
        assert_eq!(Query::parse(&many).words.len(), MAX_WORDS);
    }

    #[test]
    fn matches_are_marked_in_the_text_as_it_was_written() {
        let q = Query::parse("доставка сколь");
        let text = "Здравствуйте! Сколько стоит ДОСТАВКА <b>в Казань</b>?";
        assert_eq!(
            shown(&q.highlight(text, 300)),
            "Здравствуйте! [Сколько] стоит [ДОСТАВКА] <b>в Казань</b>?"
        );
        let q = Query::parse("cafe");
        assert_eq!(
            shown(&q.highlight("Un CAFÉ, s'il vous plaît", 300)),
            "Un [CAFÉ], s'il vous plaît"
        );
    }

    #[test]
    fn a_long_text_is_cut_around_its_first_match() {
        let text = format!("{} needle {}", "a ".repeat(500), "b ".repeat(500));
        let shown = shown(&Query::parse("needle").highlight(&text, 100));
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        assert!(shown.contains("[needle]"));
        assert!(shown.chars().count() < 110, "{shown}");
    }
}
