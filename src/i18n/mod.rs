//! The languages the page speaks: English and Russian, chosen from Accept-Language or the
//! user's own choice; the one catalogue of words the pages and the checklist look up by
//! key (`pages`, `checklist`, `conversations`); and human-readable dates.

mod checklist;
mod conversations;
mod inbox;
mod pages;

use crate::time::civil_utc;

/// Every table of the catalogue: (key, English, Russian).
const TABLES: [&[(&str, &str, &str)]; 4] = [
    pages::STRINGS,
    checklist::STRINGS,
    inbox::STRINGS,
    conversations::STRINGS,
];

fn entries() -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str)> {
    TABLES.into_iter().flatten()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Ru,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "ru" => Some(Lang::Ru),
            _ => None,
        }
    }

    /// The best of our languages for an Accept-Language header, by its q-values.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best = (Lang::En, -1.0f32);
        for item in header.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            if let Some(lang) = Lang::from_code(primary) {
                if q > best.1 {
                    best = (lang, q);
                }
            }
        }
        best.0
    }

    /// Picks the text for this language.
    fn pick<'a>(self, en: &'a str, ru: &'a str) -> &'a str {
        match self {
            Lang::En => en,
            Lang::Ru => ru,
        }
    }

    /// A string of the catalogue. An unknown key comes back as itself, so a missing entry
    /// shows up on the page instead of failing it (a unit test keeps the catalogue whole).
    pub fn t(self, key: &str) -> &str {
        match entries().find(|(k, _, _)| *k == key) {
            Some((_, en, ru)) => self.pick(en, ru),
            None => key,
        }
    }

    /// Every catalogue entry in this language, for templates (`t.key`).
    pub fn catalogue(self) -> impl Iterator<Item = (&'static str, &'static str)> {
        entries().map(move |(k, en, ru)| (*k, self.pick(en, ru)))
    }

    /// "25 Nov 2026, 14:05 UTC" / "25 нояб. 2026, 14:05 UTC".
    pub fn datetime(self, ms: i64) -> String {
        let (year, month, day, hour, minute) = civil_utc(ms);
        format!(
            "{day} {} {year}, {hour:02}:{minute:02} UTC",
            self.month(month)
        )
    }

    /// "25 Nov" / "25 нояб.", for chart labels.
    pub fn day_month(self, ms: i64) -> String {
        let (_, month, day, _, _) = civil_utc(ms);
        format!("{day} {}", self.month(month))
    }

    /// How long ago, roughly: "5 min ago" / "5 мин назад". Abbreviated units keep Russian
    /// free of plural forms.
    pub fn ago(self, now_ms: i64, ms: i64) -> String {
        let minutes = now_ms.saturating_sub(ms) / 60_000;
        let (n, en, ru) = match minutes {
            ..=0 => return self.pick("just now", "только что").to_string(),
            1..=59 => (minutes, "min ago", "мин назад"),
            60..=1439 => (minutes / 60, "h ago", "ч назад"),
            _ => (minutes / 1440, "d ago", "дн. назад"),
        };
        format!("{n} {}", self.pick(en, ru))
    }

    fn month(self, month: i64) -> &'static str {
        let index = usize::try_from(month - 1).unwrap_or(0).min(11);
        match self {
            Lang::En => MONTHS_EN[index],
            Lang::Ru => MONTHS_RU[index],
        }
    }
}

const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// Genitive abbreviations, as Russian writes a day and a month ("25 нояб.").
const MONTHS_RU: [&str; 12] = [
    "янв.",
    "февр.",
    "мар.",
    "апр.",
    "мая",
    "июн.",
    "июл.",
    "авг.",
    "сент.",
    "окт.",
    "нояб.",
    "дек.",
];

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn accept_language_prefers_the_highest_q_we_speak() {
        assert_eq!(
            Lang::from_accept_language("ru-RU,ru;q=0.9,en;q=0.8"),
            Lang::Ru
        );
        assert_eq!(
            Lang::from_accept_language("en-US,en;q=0.9,ru;q=0.8"),
            Lang::En
        );
        assert_eq!(Lang::from_accept_language("de-DE,ru;q=0.5"), Lang::Ru);
        assert_eq!(Lang::from_accept_language("de-DE"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
    }

    #[test]
    fn catalogue_has_unique_keys_and_both_languages() {
        let mut keys = std::collections::HashSet::new();
        for (key, en, ru) in super::entries() {
            assert!(keys.insert(key), "duplicate key {key}");
            assert!(
                !en.is_empty() && !ru.is_empty(),
                "{key} lacks a translation"
            );
        }
        assert_eq!(Lang::Ru.t("sign_in"), "Войти");
        assert_eq!(Lang::En.t("no-such-key"), "no-such-key");
    }

    /// Every key is used: named as a string literal in `src/` outside the catalogue, or
    /// printed by a template (`t.key`, or a family such as `t["kind_" ~ a.kind]`). A key no
    /// one shows is a translation nobody keeps up.
    #[test]
    fn every_key_is_used() {
        fn read_all(dir: &std::path::Path, skip: &std::path::Path, out: &mut String) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() && path != skip {
                    read_all(&path, skip, out);
                } else if path.extension().is_some_and(|e| e == "rs" || e == "html") {
                    out.push_str(&std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let (mut code, mut templates) = (String::new(), String::new());
        read_all(&root.join("src"), &root.join("src/i18n"), &mut code);
        read_all(
            &root.join("templates"),
            &root.join("src/i18n"),
            &mut templates,
        );
        let families: Vec<&str> = templates
            .split("t[\"")
            .skip(1)
            .filter_map(|rest| rest.split_once("\" ~").map(|(prefix, _)| prefix))
            .collect();
        let printed = |key: &str| {
            templates.match_indices(&format!("t.{key}")).any(|(at, m)| {
                let next = templates[at + m.len()..].chars().next().unwrap_or(' ');
                !(next.is_ascii_alphanumeric() || next == '_')
            })
        };
        let unused: Vec<&str> = super::entries()
            .map(|(key, _, _)| *key)
            .filter(|key| !code.contains(&format!("\"{key}\"")))
            .filter(|key| !printed(key))
            .filter(|key| !families.iter().any(|f| key.starts_with(f)))
            .collect();
        assert!(unused.is_empty(), "keys never used: {unused:?}");
    }

    #[test]
    fn dates_read_naturally_in_both_languages() {
        let ms = 1_795_615_500_000; // 2026-11-25T14:05:00Z
        assert_eq!(Lang::En.datetime(ms), "25 Nov 2026, 14:05 UTC");
        assert_eq!(Lang::Ru.datetime(ms), "25 нояб. 2026, 14:05 UTC");
        assert_eq!(Lang::Ru.day_month(ms), "25 нояб.");
        assert_eq!(Lang::En.ago(ms + 5 * 60_000, ms), "5 min ago");
        assert_eq!(Lang::Ru.ago(ms + 5 * 60_000, ms), "5 мин назад");
        assert_eq!(Lang::En.ago(ms + 3 * 3_600_000, ms), "3 h ago");
        assert_eq!(Lang::Ru.ago(ms + 2 * 86_400_000, ms), "2 дн. назад");
        assert_eq!(Lang::En.ago(ms - 1000, ms), "just now");
    }
}
