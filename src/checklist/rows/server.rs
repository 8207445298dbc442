//! The server row: the relay runs, keeps what it acknowledges, and has room to grow.

use super::{bytes_text, duration_text};
use crate::checklist::facts::ServerFacts;
use crate::checklist::{Check, Fact, FactKind, Status};
use crate::i18n::Lang;

/// Free disk space below either of these is a warning.
const LOW_DISK_BYTES: u64 = 1024 * 1024 * 1024;
const LOW_DISK_PERCENT: u64 = 5;

pub fn row(f: &ServerFacts, lang: Lang, now_ms: i64) -> Check {
    let durable = f.journal_mode.eq_ignore_ascii_case("wal") && f.synchronous == 2;
    let low_disk = f.disk.is_some_and(|d| {
        d.free < LOW_DISK_BYTES
            || d.free.saturating_mul(100) < d.total.saturating_mul(LOW_DISK_PERCENT)
    });
    let near_cap = f
        .max_db_bytes
        .is_some_and(|max| (f.db_bytes + f.wal_bytes).saturating_mul(10) > max.saturating_mul(9));
    let mut facts = vec![
        Fact::new(
            lang.t("server_version"),
            env!("CARGO_PKG_VERSION"),
            FactKind::Text,
        ),
        Fact::new(
            lang.t("server_uptime"),
            duration_text(now_ms - f.started_at_ms, lang),
            FactKind::Text,
        ),
        Fact::new(lang.t("server_database"), f.db_path.clone(), FactKind::Code),
        Fact::new(
            lang.t("server_database_size"),
            format!(
                "{} (+ WAL {})",
                bytes_text(f.db_bytes, lang),
                bytes_text(f.wal_bytes, lang)
            ),
            FactKind::Text,
        ),
        Fact::new(
            lang.t("server_durability"),
            format!(
                "journal_mode={}, synchronous={}",
                f.journal_mode, f.synchronous
            ),
            FactKind::Text,
        ),
    ];
    if let Some(max) = f.max_db_bytes {
        facts.push(Fact::new(
            lang.t("server_size_limit"),
            bytes_text(max, lang),
            FactKind::Text,
        ));
    }
    let kept = |ms: Option<i64>| match ms {
        Some(ms) => duration_text(ms, lang),
        None => lang.t("server_ever").to_string(),
    };
    facts.push(Fact::new(
        lang.t("server_retention"),
        format!(
            "{} {}, {} {}",
            lang.t("server_messages"),
            kept(f.keep_messages_ms),
            lang.t("server_raw_requests"),
            kept(f.keep_raw_ms.or(f.keep_messages_ms)),
        ),
        FactKind::Text,
    ));
    facts.push(Fact::new(
        lang.t("server_media"),
        match f.media_cap {
            Some(cap) => format!(
                "{}: {}, {} {} {}",
                lang.t("server_media_files"),
                f.media.files,
                bytes_text(f.media.bytes.max(0) as u64, lang),
                lang.t("server_of"),
                bytes_text(cap, lang),
            ),
            None => lang.t("server_media_off").to_string(),
        },
        FactKind::Text,
    ));
    if f.media.expired + f.media.refused + f.media.pending > 0 {
        facts.push(Fact::new(
            lang.t("server_media_not_kept"),
            format!(
                "{}: {}, {}: {}, {}: {}",
                lang.t("server_media_expired"),
                f.media.expired,
                lang.t("server_media_refused"),
                f.media.refused,
                lang.t("server_media_waiting"),
                f.media.pending,
            ),
            FactKind::Text,
        ));
    }
    if let Some(disk) = f.disk {
        facts.push(Fact::new(
            lang.t("server_free_disk_space"),
            format!(
                "{} {} {} ({}%)",
                bytes_text(disk.free, lang),
                lang.t("server_of"),
                bytes_text(disk.total, lang),
                disk.free.saturating_mul(100) / disk.total.max(1)
            ),
            FactKind::Text,
        ));
    }
    let (status, detail) = if !durable {
        (Status::Fail, lang.t("server_database_not_wal_mode"))
    } else if low_disk {
        (Status::Warn, lang.t("server_little_free_disk_space"))
    } else if near_cap {
        (Status::Warn, lang.t("server_database_above_90_max"))
    } else {
        (Status::Ok, lang.t("server_every_acknowledged_webhook_disk"))
    };
    Check {
        key: "server",
        status,
        title: lang.t("server_relay_running").into(),
        detail: detail.into(),
        facts,
        actions: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::checklist::facts::DiskSpace;

    #[test]
    fn a_durable_relay_with_room_is_ok_and_shows_its_figures() {
        let en = row(&server(), Lang::En, NOW);
        assert_eq!(en.status, Status::Ok);
        assert_eq!(en.title, "Relay is running");
        assert!(
            en.detail.contains("on disk before the answer"),
            "{}",
            en.detail
        );
        assert_eq!(
            shown(&en, "Version", FactKind::Text),
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(shown(&en, "Uptime", FactKind::Text), "2 h 5 min");
        assert_eq!(
            shown(&en, "Database", FactKind::Code),
            "/var/lib/relay/relay.db"
        );
        assert_eq!(
            shown(&en, "Database size", FactKind::Text),
            "3.0 MiB (+ WAL 512 B)"
        );
        assert_eq!(
            shown(&en, "Durability", FactKind::Text),
            "journal_mode=wal, synchronous=2"
        );
        assert_eq!(
            shown(&en, "Free disk space", FactKind::Text),
            "50.0 GiB of 100.0 GiB (50%)"
        );
        assert!(!has_fact(&en, "Size limit"));
        assert!(en.actions.is_empty());

        let ru = row(&server(), Lang::Ru, NOW);
        assert_eq!(ru.title, "Relay работает");
        assert_eq!(shown(&ru, "Работает", FactKind::Text), "2 ч 5 мин");
        assert_eq!(
            shown(&ru, "Свободно на диске", FactKind::Text),
            "50,0 ГБ из 100,0 ГБ (50%)"
        );
    }

    #[test]
    fn kept_media_and_the_files_not_kept_are_shown() {
        let en = row(&server(), Lang::En, NOW);
        assert_eq!(
            shown(&en, "Media kept", FactKind::Text),
            "off (--keep-media 0)"
        );
        assert!(!has_fact(&en, "Media not kept"));

        let mut facts = server();
        facts.media_cap = Some(GIB);
        facts.media = crate::store::MediaTotals {
            files: 12,
            bytes: 3 * MIB as i64,
            pending: 1,
            expired: 4,
            refused: 2,
        };
        let en = row(&facts, Lang::En, NOW);
        assert_eq!(en.status, Status::Ok);
        assert_eq!(
            shown(&en, "Media kept", FactKind::Text),
            "files: 12, 3.0 MiB of 1.0 GiB"
        );
        assert_eq!(
            shown(&en, "Media not kept", FactKind::Text),
            "expired before they could be kept: 4, refused: 2, waiting: 1"
        );
        let ru = row(&facts, Lang::Ru, NOW);
        assert_eq!(
            shown(&ru, "Сохранённые медиа", FactKind::Text),
            "файлов: 12, 3,0 МБ из 1,0 ГБ"
        );
        assert!(has_fact(&ru, "Не сохранённые медиа"));
    }

    #[test]
    fn without_wal_and_full_sync_acknowledged_webhooks_are_not_safe() {
        for (journal, sync) in [("delete", 2), ("wal", 1)] {
            let mut facts = server();
            facts.journal_mode = journal.into();
            facts.synchronous = sync;
            // Also short of disk: losing acknowledged webhooks is the worse news.
            facts.disk = Some(DiskSpace {
                free: 1,
                total: 100 * GIB,
            });
            let en = row(&facts, Lang::En, NOW);
            assert_eq!(en.status, Status::Fail, "{journal} {sync}");
            assert!(en.detail.contains("network filesystem"), "{}", en.detail);
            let ru = row(&facts, Lang::Ru, NOW);
            assert!(
                ru.detail.contains("сетевой файловой системе"),
                "{}",
                ru.detail
            );
        }
    }

    #[test]
    fn little_free_disk_is_a_warning_by_bytes_or_by_share() {
        let cases = [
            (512 * MIB, 100 * GIB),
            // Plenty of bytes, but under 5% of a large disk.
            (40 * GIB, 1000 * GIB),
        ];
        for (free, total) in cases {
            let mut facts = server();
            facts.disk = Some(DiskSpace { free, total });
            let en = row(&facts, Lang::En, NOW);
            assert_eq!(en.status, Status::Warn, "{free} of {total}");
            assert!(
                en.detail.contains("Little free disk space"),
                "{}",
                en.detail
            );
            assert!(en.detail.contains("--max-db-mb"));
            let ru = row(&facts, Lang::Ru, NOW);
            assert!(ru.detail.contains("на диске мало"), "{}", ru.detail);
        }
        let mut unknown = server();
        unknown.disk = None;
        let check = row(&unknown, Lang::En, NOW);
        assert_eq!(check.status, Status::Ok);
        assert!(!has_fact(&check, "Free disk space"));
    }

    #[test]
    fn a_database_near_its_size_limit_is_a_warning() {
        let mut facts = server();
        facts.max_db_bytes = Some(100 * MIB);
        facts.db_bytes = 85 * MIB;
        facts.wal_bytes = 6 * MIB;
        let en = row(&facts, Lang::En, NOW);
        assert_eq!(en.status, Status::Warn);
        assert!(
            en.detail.contains("above 90% of --max-db-mb"),
            "{}",
            en.detail
        );
        assert_eq!(shown(&en, "Size limit", FactKind::Text), "100.0 MiB");
        let ru = row(&facts, Lang::Ru, NOW);
        assert!(ru.detail.contains("больше 90%"), "{}", ru.detail);
        assert_eq!(shown(&ru, "Предел размера", FactKind::Text), "100,0 МБ");

        facts.wal_bytes = 0;
        assert_eq!(row(&facts, Lang::En, NOW).status, Status::Ok, "85% is fine");
    }

    #[test]
    fn the_retention_in_force_is_shown() {
        let en = row(&server(), Lang::En, NOW);
        assert_eq!(
            shown(&en, "Retention", FactKind::Text),
            "messages for ever, raw requests for ever"
        );
        let mut facts = server();
        facts.keep_raw_ms = Some(30 * 86_400_000);
        facts.keep_messages_ms = Some(365 * 86_400_000);
        let ru = row(&facts, Lang::Ru, NOW);
        assert_eq!(
            shown(&ru, "Хранение", FactKind::Text),
            "сообщения 365 д, исходные запросы 30 д"
        );
    }
}
