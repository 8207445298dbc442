//! Messages caught up from Chatrace's inbox: each is either one the relay already has
//! (its inbox id), the same message a webhook brought (matched one to one), or new. Also
//! the progress of history imports and the caught-up counts.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::ingest::{queue_deliveries, upsert_contact};
use super::rollups::Tally;
use super::Store;
use crate::error::Result;
use crate::payload::{Direction, NewMessage};

/// A webhook message is the inbox's when it arrived from this long before the inbox's time
/// (clocks disagree a little)...
pub(super) const MATCH_BEFORE_MS: i64 = 60_000;
/// ...to this long after it (Chatrace may send the External Request late).
pub(super) const MATCH_AFTER_MS: i64 = 600_000;
const DAY_MS: i64 = 86_400_000;

/// How caught-up messages are stored.
#[derive(Debug, Clone, Default)]
pub struct CatchUpRules {
    /// Where new messages are forwarded; empty for a history import without `--forward`.
    pub forward_targets: Vec<String>,
}

/// One inbox message, ready to be stored.
#[derive(Debug, Clone)]
pub struct InboxRow {
    /// The message; its `external_id` is the inbox id, `sent_at_ms` the inbox time.
    pub message: NewMessage,
    /// Outgoing: `bot`, `agent`, `instagram_app`, `facebook_inbox`.
    pub sender: Option<&'static str>,
    /// The team member who wrote it (sender `agent`).
    pub sender_id: Option<String>,
}

/// What became of one conversation's page of inbox messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaughtUp {
    /// New messages, in time order.
    pub new_ids: Vec<i64>,
    /// Messages a webhook had brought, now carrying their inbox id and time.
    pub matched: usize,
    /// Messages already caught up before.
    pub known: usize,
}

/// The caught-up figures the page, the stats and the metrics show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxCounts {
    pub total: i64,
    pub last_24h: i64,
    /// The last 30 days, during live chat and not.
    pub last_30d_live_chat: i64,
    pub last_30d_other: i64,
}

impl Store {
    /// Stores one page of a conversation's inbox messages in one transaction, oldest first,
    /// so that two equal texts in the inbox match two equal webhook messages in order, and
    /// two in the inbox against one webhook leaves one new. A message seen before (by its
    /// inbox id) is never stored again, so running a catch-up twice stores nothing new.
    pub fn catch_up(
        &mut self,
        rows: &[InboxRow],
        live_chat: bool,
        rules: &CatchUpRules,
        now_ms: i64,
    ) -> Result<CaughtUp> {
        let mut rows: Vec<&InboxRow> = rows.iter().collect();
        rows.sort_by_key(|r| r.message.sent_at_ms);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut outcome = CaughtUp::default();
        let mut tally = Tally::default();
        for row in rows {
            match store_row(&tx, row, live_chat, rules, now_ms)? {
                Stored::Known => outcome.known += 1,
                Stored::Matched => outcome.matched += 1,
                Stored::New(id) => {
                    outcome.new_ids.push(id);
                    let at = row.message.sent_at_ms.unwrap_or(now_ms);
                    let out = usize::from(row.message.direction == Direction::Out);
                    tally.messages(at, 1 - out, out);
                    tally.caught_up(at, live_chat);
                }
            }
        }
        tally.write(&tx)?;
        tx.commit()?;
        Ok(outcome)
    }

    /// A conversation's name and picture fill a contact whose name the relay does not know
    /// yet, which also spares its lookup through the API.
    pub fn fill_contact(
        &self,
        contact_id: &str,
        name: Option<&str>,
        profile_pic: Option<&str>,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE contacts SET contact_name = coalesce(contact_name, ?2),
                                     profile_pic = coalesce(profile_pic, ?3)
                 WHERE contact_id = ?1 AND (contact_name IS NULL OR profile_pic IS NULL)",
            )?
            .execute(params![contact_id, name, profile_pic])?;
        Ok(())
    }

    /// Whether a history import has finished this conversation already.
    pub fn history_done(&self, job: &str, contact_id: &str) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM catch_up_done WHERE job = ?1 AND contact_id = ?2")?
            .query_row(params![job, contact_id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    pub fn mark_history_done(&self, job: &str, contact_id: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO catch_up_done (job, contact_id) VALUES (?1, ?2)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![job, contact_id])?;
        Ok(())
    }

    /// A finished import's progress is dropped, so the same import asked again runs again.
    pub fn forget_history(&self, job: &str) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM catch_up_done WHERE job = ?1")?
            .execute([job])?;
        Ok(())
    }

    /// From the rollups, plus the last day by index.
    pub fn inbox_counts(&self, now_ms: i64) -> Result<InboxCounts> {
        let first_day = crate::time::day_number(now_ms) - 29;
        let (live, other): (i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT coalesce(sum(live_chat), 0), coalesce(sum(other), 0)
                 FROM caught_up_daily WHERE day >= ?1",
            )?
            .query_row([first_day], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let last_24h: i64 = self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM messages INDEXED BY messages_caught_up
                 WHERE source = 'inbox' AND received_at >= ?1",
            )?
            .query_row([now_ms - DAY_MS], |r| r.get(0))?;
        Ok(InboxCounts {
            total: self.counter("caught_up")?,
            last_24h,
            last_30d_live_chat: live,
            last_30d_other: other,
        })
    }
}

/// The earliest webhook message of this weak key within the window (?2 to ?3) that no inbox
/// message has claimed yet.
const CLAIMABLE_WEBHOOK_MESSAGE: &str = "SELECT id FROM messages INDEXED BY messages_weak
     WHERE weak_key = ?1 AND dedup_key IS NULL AND is_test = 0
       AND received_at BETWEEN ?2 AND ?3
     ORDER BY received_at, id LIMIT 1";

enum Stored {
    Known,
    Matched,
    New(i64),
}

fn store_row(
    conn: &Connection,
    row: &InboxRow,
    live_chat: bool,
    rules: &CatchUpRules,
    now_ms: i64,
) -> Result<Stored> {
    let msg = &row.message;
    let (Some(key), Some(at)) = (msg.dedup_hash(), msg.sent_at_ms) else {
        return Err(crate::error::Error::NotStored(
            "an inbox message needs its id and time".into(),
        ));
    };
    let known: Option<i64> = conn
        .prepare_cached("SELECT id FROM messages WHERE dedup_key = ?1")?
        .query_row([&key[..]], |r| r.get(0))
        .optional()?;
    if known.is_some() {
        return Ok(Stored::Known);
    }
    let weak_key = msg.weak_key();
    // The earliest message with the same contact, direction and content that no inbox
    // message has claimed yet (claiming sets its dedup key), within the window: found by
    // the weak key's index, so the cost does not grow with the database.
    let claimable: Option<i64> = conn
        .prepare_cached(CLAIMABLE_WEBHOOK_MESSAGE)?
        .query_row(
            params![&weak_key[..], at - MATCH_BEFORE_MS, at + MATCH_AFTER_MS],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = claimable {
        conn.prepare_cached(
            "UPDATE messages SET external_id = ?2, dedup_key = ?3, sent_at = ?4,
                                 sender = coalesce(sender, ?5),
                                 sender_id = coalesce(sender_id, ?6)
             WHERE id = ?1",
        )?
        .execute(params![
            id,
            msg.external_id,
            &key[..],
            at,
            row.sender,
            row.sender_id
        ])?;
        return Ok(Stored::Matched);
    }
    let attachments = serde_json::to_string(&msg.attachments).unwrap_or_else(|_| "[]".into());
    conn.prepare_cached(
        "INSERT INTO messages (raw_request_id, received_at, sent_at, channel, direction,
                               contact_id, contact_name, username, text, attachments,
                               external_id, dedup_key, weak_key, is_test, source, sender,
                               sender_id, live_chat)
         VALUES (NULL, ?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, 'inbox', ?12, ?13,
                 ?14)",
    )?
    .execute(params![
        at,
        msg.channel,
        msg.direction.as_str(),
        msg.contact_id,
        msg.contact_name,
        msg.username,
        msg.text,
        attachments,
        msg.external_id,
        &key[..],
        &weak_key[..],
        row.sender,
        row.sender_id,
        live_chat,
    ])?;
    let id = conn.last_insert_rowid();
    upsert_contact(conn, msg, at)?;
    queue_deliveries(conn, id, &rules.forward_targets, now_ms)?;
    Ok(Stored::New(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{IngestRequest, IngestRules, Write};

    fn inbox(id: &str, text: &str, at: i64) -> InboxRow {
        InboxRow {
            message: NewMessage {
                sent_at_ms: Some(at),
                channel: Some("instagram".into()),
                direction: Direction::In,
                contact_id: "c".into(),
                contact_name: None,
                username: None,
                profile_pic: None,
                text: Some(text.into()),
                attachments: Vec::new(),
                external_id: Some(format!("inbox:{id}")),
            },
            sender: None,
            sender_id: None,
        }
    }

    fn webhook(store: &mut Store, text: &str, at: i64) -> i64 {
        let mut request = IngestRequest::sample(text, "unused");
        request.messages[0].external_id = None;
        request.received_at_ms = at;
        let results = store
            .write_batch(&[Write::Ingest(&request)], &IngestRules::default())
            .unwrap();
        results[0].as_ref().unwrap().as_ref().unwrap().stored_ids[0]
    }

    fn catch_up(store: &mut Store, rows: &[InboxRow]) -> CaughtUp {
        store
            .catch_up(rows, false, &CatchUpRules::default(), 10_000_000)
            .unwrap()
    }

    #[test]
    fn equal_texts_match_one_to_one_in_time_order() {
        let mut store = Store::open(std::path::Path::new(":memory:")).unwrap();
        let a = webhook(&mut store, "ok", 1_000_000);
        let b = webhook(&mut store, "ok", 1_003_000);
        let outcome = catch_up(
            &mut store,
            &[inbox("2", "ok", 1_002_500), inbox("1", "ok", 999_000)],
        );
        assert_eq!((outcome.matched, outcome.new_ids.len()), (2, 0));
        let inbox_id = |id: i64| -> String {
            store
                .conn
                .query_row(
                    "SELECT external_id FROM messages WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .unwrap()
        };
        assert_eq!(
            (inbox_id(a), inbox_id(b)),
            ("inbox:1".into(), "inbox:2".into())
        );
        // Again: nothing new, nothing matched twice.
        let again = catch_up(
            &mut store,
            &[inbox("1", "ok", 999_000), inbox("2", "ok", 1_002_500)],
        );
        assert_eq!((again.known, again.matched, again.new_ids.len()), (2, 0, 0));
    }

    #[test]
    fn two_in_the_inbox_against_one_webhook_leaves_one_new() {
        let mut store = Store::open(std::path::Path::new(":memory:")).unwrap();
        webhook(&mut store, "ok", 1_000_000);
        let outcome = catch_up(
            &mut store,
            &[inbox("1", "ok", 1_000_000), inbox("2", "ok", 1_030_000)],
        );
        assert_eq!((outcome.matched, outcome.new_ids.len()), (1, 1));
        assert_eq!(store.counter("caught_up").unwrap(), 1);
        let source: String = store
            .conn
            .query_row(
                "SELECT source FROM messages WHERE id = ?1",
                [outcome.new_ids[0]],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(source, "inbox");
    }

    #[test]
    fn a_webhook_trailing_its_caught_up_copy_claims_it() {
        let mut store = Store::open(std::path::Path::new(":memory:")).unwrap();
        let caught = catch_up(&mut store, &[inbox("1", "ok", 1_000_000)]);
        assert_eq!(caught.new_ids.len(), 1);
        // The flow waited two minutes before its External Request.
        let mut request = IngestRequest::sample("ok", "unused");
        request.messages[0].external_id = None;
        request.received_at_ms = 1_120_000;
        let rules = IngestRules::default();
        let results = store
            .write_batch(&[Write::Ingest(&request)], &rules)
            .unwrap();
        let outcome = results[0].as_ref().unwrap().as_ref().unwrap();
        assert_eq!((outcome.stored_ids.len(), outcome.duplicates), (0, 1));
        // A second "ok" has no copy left to claim: it is a new message.
        request.received_at_ms = 1_130_000;
        let results = store
            .write_batch(&[Write::Ingest(&request)], &rules)
            .unwrap();
        let outcome = results[0].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(outcome.stored_ids.len(), 1);
        assert_eq!(store.rollups().unwrap(), store.recount().unwrap());
    }

    /// SQLite's plan for `sql` on the relay's schema, one line per step.
    fn plan(store: &Store, sql: &str) -> Vec<String> {
        let mut statement = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = statement
            .query_map(params![[0u8; 16].to_vec(), 0, 0], |r| r.get(3))
            .unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }

    #[test]
    fn matching_looks_up_the_weak_key_and_scans_nothing() {
        let store = Store::open(std::path::Path::new(":memory:")).unwrap();
        for sql in [
            CLAIMABLE_WEBHOOK_MESSAGE,
            super::super::ingest::CLAIMABLE_CAUGHT_UP_COPY,
        ] {
            let plan = plan(&store, sql);
            assert!(
                plan.iter().any(|step| step
                    .starts_with("SEARCH messages USING INDEX messages_weak (weak_key=?")),
                "{plan:?}"
            );
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN")),
                "{plan:?}"
            );
        }
    }

    #[test]
    fn outside_the_window_or_another_text_is_a_new_message() {
        let mut store = Store::open(std::path::Path::new(":memory:")).unwrap();
        webhook(&mut store, "ok", 1_000_000);
        let outcome = catch_up(
            &mut store,
            &[
                inbox("1", "ok", 1_000_000 + MATCH_BEFORE_MS + 1),
                inbox("2", "ok!", 1_000_000),
                inbox("3", "ok", 1_000_000 - MATCH_AFTER_MS - 1),
            ],
        );
        assert_eq!((outcome.matched, outcome.new_ids.len()), (0, 3));
        assert_eq!(store.rollups().unwrap(), store.recount().unwrap());
    }
}
