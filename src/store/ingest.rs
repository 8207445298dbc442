//! The write side of the store: webhook requests and their messages, rejections, the
//! outbox rows for forwarding. Called only from the group-commit writer thread.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::rollups::Tally;
use super::Store;
use crate::error::Result;
use crate::outcome::{Flag, Refusal};
use crate::payload::NewMessage;

/// How webhooks are written: where their messages are forwarded, and how long an
/// identical request without an id or a sender time counts as a repeat.
#[derive(Debug, Clone, Default)]
pub struct IngestRules {
    pub forward_targets: Vec<String>,
    /// Without an external id or a sender time, the same contact sending the same text and
    /// attachments again within this window is taken as the same request sent twice (a
    /// flow that fired twice); later, or with the window at 0, as a new message: a person
    /// may well write "ok" twice.
    pub dedup_window_ms: i64,
}

/// How many rejected requests the log keeps.
const REJECTED_KEPT: i64 = 500;

/// One accepted webhook request, ready to be stored.
#[derive(Debug)]
pub struct IngestRequest {
    pub received_at_ms: i64,
    pub method: String,
    pub path: String,
    /// Query string with the secret redacted.
    pub query: String,
    pub remote_addr: Option<String>,
    pub content_type: Option<String>,
    /// JSON object of the request headers, secrets redacted.
    pub headers: String,
    pub body: Vec<u8>,
    pub messages: Vec<NewMessage>,
    pub flag: Option<Flag>,
    pub is_test: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    pub request_id: i64,
    /// Ids of the messages this request added, in body order.
    pub stored_ids: Vec<i64>,
    /// How many of the stored messages go out (direction `out`), for the rollups.
    pub outgoing: usize,
    pub duplicates: usize,
}

/// A request turned away, for the bounded log the setup page shows.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub received_at_ms: i64,
    pub refusal: Refusal,
    pub detail: String,
    pub method: String,
    pub path: String,
    pub remote_addr: Option<String>,
    pub excerpt: String,
}

/// What one queued write wants done inside the shared transaction.
pub enum Write<'a> {
    Ingest(&'a IngestRequest),
    Reject(&'a Rejection),
    /// A no-op write: proves the database accepts writes (health check).
    HealthCheck,
}

impl Store {
    /// Applies a batch of writes in one transaction: one fsync for all of them. A write that
    /// fails leaves the others in. The outer result fails when the transaction as a whole
    /// could not commit; then nothing was stored.
    pub fn write_batch(
        &mut self,
        writes: &[Write<'_>],
        rules: &IngestRules,
    ) -> Result<Vec<Result<Option<IngestOutcome>>>> {
        // Writes almost never fail one by one (a full disk fails them all), so the batch
        // first runs without savepoints, which would re-journal every page the batch has
        // already touched once per write. Only if a write fails is it all redone with a
        // savepoint per write, to keep the good ones.
        if let Some(results) = self.write_all_or_nothing(writes, rules)? {
            return Ok(results);
        }
        self.write_each_isolated(writes, rules)
    }

    /// The batch in one plain transaction; None, with nothing written, if any write failed.
    fn write_all_or_nothing(
        &mut self,
        writes: &[Write<'_>],
        rules: &IngestRules,
    ) -> Result<Option<Vec<Result<Option<IngestOutcome>>>>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(writes.len());
        let mut tally = Tally::default();
        for write in writes {
            let result = apply(&tx, write, rules);
            if result.is_err() {
                return Ok(None); // dropping the transaction rolls it back
            }
            count(&mut tally, write, &result);
            results.push(result);
        }
        tally.write(&tx)?;
        tx.commit()?;
        Ok(Some(results))
    }

    fn write_each_isolated(
        &mut self,
        writes: &[Write<'_>],
        rules: &IngestRules,
    ) -> Result<Vec<Result<Option<IngestOutcome>>>> {
        let mut tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(writes.len());
        // Totals and rollups are added once per batch, not once per request: the counter
        // rows are the same for everyone, and one update each is all the transaction needs.
        let mut tally = Tally::default();
        for write in writes {
            let sp = tx.savepoint()?;
            let result = apply(&sp, write, rules);
            if result.is_ok() {
                sp.commit()?;
                count(&mut tally, write, &result);
            } // else: dropping the savepoint rolls it back.
            results.push(result);
        }
        tally.write(&tx)?;
        tx.commit()?;
        Ok(results)
    }
}

fn apply(
    conn: &Connection,
    write: &Write<'_>,
    rules: &IngestRules,
) -> Result<Option<IngestOutcome>> {
    match write {
        Write::Ingest(req) => ingest(conn, req, rules).map(Some),
        Write::Reject(rej) => reject(conn, rej).map(|()| None),
        Write::HealthCheck => health_check(conn).map(|()| None),
    }
}

/// Adds what one committed write contributes to the totals and rollups. Test requests are
/// never counted.
fn count(tally: &mut Tally, write: &Write<'_>, result: &Result<Option<IngestOutcome>>) {
    match (write, result) {
        (Write::Ingest(req), Ok(Some(outcome))) if !req.is_test => {
            tally.add("webhooks_received", 1);
            tally.add("duplicates", outcome.duplicates as i64);
            let stored = outcome.stored_ids.len();
            tally.messages(
                req.received_at_ms,
                stored - outcome.outgoing,
                outcome.outgoing,
            );
        }
        (Write::Reject(rej), _) => tally.add(&rej.refusal.counter(), 1),
        _ => {}
    }
}

fn ingest(conn: &Connection, req: &IngestRequest, rules: &IngestRules) -> Result<IngestOutcome> {
    conn.prepare_cached(
        "INSERT INTO raw_requests (received_at, method, path, query, remote_addr, content_type,
                                   headers, body, flag, flag_detail, is_test, stored)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        req.received_at_ms,
        req.method,
        req.path,
        req.query,
        req.remote_addr,
        req.content_type,
        req.headers,
        req.body,
        req.flag.as_ref().map(Flag::code),
        req.flag.as_ref().map(Flag::stored_detail),
        req.is_test,
        // Written as if every message is new; corrected below in the rare duplicate case,
        // so the common request costs no second write of its row.
        req.messages.len() as i64,
    ])?;
    let request_id = conn.last_insert_rowid();
    let mut outcome = IngestOutcome {
        request_id,
        stored_ids: Vec::new(),
        outgoing: 0,
        duplicates: 0,
    };
    for msg in &req.messages {
        match insert_message(conn, request_id, req, msg, rules.dedup_window_ms)? {
            Inserted::New(id) => {
                outcome.stored_ids.push(id);
                if msg.direction == crate::payload::Direction::Out {
                    outcome.outgoing += 1;
                }
                if !req.is_test {
                    upsert_contact(conn, msg, req.received_at_ms)?;
                }
                if msg.direction == crate::payload::Direction::In {
                    queue_deliveries(conn, id, &rules.forward_targets, req.received_at_ms)?;
                }
            }
            Inserted::Merged(into) => {
                outcome.duplicates += 1;
                conn.prepare_cached(
                    "INSERT INTO merged (raw_request_id, message_id, received_at)
                     VALUES (?1, ?2, ?3)",
                )?
                .execute(params![request_id, into, req.received_at_ms])?;
            }
        }
    }
    if outcome.duplicates > 0 {
        conn.prepare_cached("UPDATE raw_requests SET stored = ?1, duplicates = ?2 WHERE id = ?3")?
            .execute(params![
                outcome.stored_ids.len() as i64,
                outcome.duplicates as i64,
                request_id
            ])?;
    }
    Ok(outcome)
}

/// What became of one message of a request.
enum Inserted {
    New(i64),
    /// A repeat of a message already stored: the one it was merged into, when still there.
    Merged(Option<i64>),
}

/// Inserts the message unless it repeats one already stored.
fn insert_message(
    conn: &Connection,
    request_id: i64,
    req: &IngestRequest,
    msg: &NewMessage,
    dedup_window_ms: i64,
) -> Result<Inserted> {
    let attachments = serde_json::to_string(&msg.attachments).unwrap_or_else(|_| "[]".into());
    let key = msg.dedup_hash();
    let key = key.as_ref().map(|k| &k[..]);
    let weak_key = key.is_none().then(|| msg.weak_key());
    if let (Some(weak_key), true) = (&weak_key, dedup_window_ms > 0) {
        // The newest earlier request's copy, found by key: the cost does not grow with how
        // many messages the contact sent. Earlier requests only, so a request that itself
        // carries the same text twice keeps both.
        let newest: Option<(i64, i64)> = conn
            .prepare_cached(
                "SELECT id, received_at FROM messages INDEXED BY messages_weak
                 WHERE weak_key = ?1 AND raw_request_id < ?2
                 ORDER BY raw_request_id DESC LIMIT 1",
            )?
            .query_row(params![&weak_key[..], request_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        if let Some((id, at)) = newest {
            if req.received_at_ms - at <= dedup_window_ms {
                return Ok(Inserted::Merged(Some(id)));
            }
        }
    }
    // Catch-up may have stored this message from Chatrace's inbox before its webhook came
    // (a flow that waits before its External Request): the webhook claims that copy, one
    // to one, instead of storing the message twice.
    if let (Some(weak_key), false) = (&weak_key, req.is_test) {
        if let Some(id) = claim_caught_up(conn, weak_key, request_id, req.received_at_ms)? {
            return Ok(Inserted::Merged(Some(id)));
        }
    }
    // ON CONFLICT names the dedup index only: any other constraint failure is a real error
    // and must surface, never be swallowed the way INSERT OR IGNORE would.
    let inserted = conn
        .prepare_cached(
            "INSERT INTO messages (raw_request_id, received_at, sent_at, channel, direction,
                                   contact_id, contact_name, username, text, attachments,
                                   external_id, dedup_key, weak_key, is_test)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (dedup_key) DO NOTHING",
        )?
        .execute(params![
            request_id,
            req.received_at_ms,
            msg.sent_at_ms,
            msg.channel,
            msg.direction.as_str(),
            msg.contact_id,
            msg.contact_name,
            msg.username,
            msg.text,
            attachments,
            msg.external_id,
            key,
            weak_key.as_ref().map(|k| &k[..]),
            req.is_test,
        ])?;
    if inserted == 1 {
        return Ok(Inserted::New(conn.last_insert_rowid()));
    }
    let into = conn
        .prepare_cached("SELECT id FROM messages WHERE dedup_key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    Ok(Inserted::Merged(into))
}

/// Puts a new message in the outbox of every target, due at once.
pub(super) fn queue_deliveries(
    conn: &Connection,
    message_id: i64,
    targets: &[String],
    at_ms: i64,
) -> Result<()> {
    for target in targets {
        conn.prepare_cached(
            "INSERT INTO deliveries (message_id, target, next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?3)",
        )?
        .execute(params![message_id, target, at_ms])?;
    }
    Ok(())
}

/// The oldest caught-up copy of this weak key within the window (?2 to ?3) that no request
/// has claimed yet.
pub(super) const CLAIMABLE_CAUGHT_UP_COPY: &str = "SELECT id FROM messages INDEXED BY messages_weak
     WHERE weak_key = ?1 AND raw_request_id IS NULL AND source = 'inbox'
       AND received_at BETWEEN ?2 AND ?3
     ORDER BY received_at, id LIMIT 1";

/// The oldest unclaimed caught-up copy of a message, from the window in which a webhook
/// may trail the inbox; claimed by linking it to this request.
fn claim_caught_up(
    conn: &Connection,
    weak_key: &[u8; 16],
    request_id: i64,
    received_at_ms: i64,
) -> Result<Option<i64>> {
    let found: Option<i64> = conn
        .prepare_cached(CLAIMABLE_CAUGHT_UP_COPY)?
        .query_row(
            params![
                &weak_key[..],
                received_at_ms - super::inbox::MATCH_AFTER_MS,
                received_at_ms + super::inbox::MATCH_BEFORE_MS
            ],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = found {
        conn.prepare_cached("UPDATE messages SET raw_request_id = ?2 WHERE id = ?1")?
            .execute(params![id, request_id])?;
    }
    Ok(found)
}

pub(super) fn upsert_contact(conn: &Connection, msg: &NewMessage, now: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO contacts (contact_id, contact_name, username, channel, profile_pic,
                               first_seen, last_seen, messages)
         VALUES (?1, ?2, ?3, ?4, ?6, ?5, ?5, 1)
         ON CONFLICT (contact_id) DO UPDATE SET
             contact_name = coalesce(excluded.contact_name, contact_name),
             username = coalesce(excluded.username, username),
             channel = coalesce(excluded.channel, channel),
             profile_pic = coalesce(excluded.profile_pic, profile_pic),
             last_seen = max(last_seen, excluded.last_seen),
             messages = messages + 1",
    )?
    .execute(params![
        msg.contact_id,
        msg.contact_name,
        msg.username,
        msg.channel,
        now,
        msg.profile_pic,
    ])?;
    Ok(())
}

fn reject(conn: &Connection, rej: &Rejection) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO rejected (received_at, reason, detail, method, path, remote_addr, excerpt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        rej.received_at_ms,
        rej.refusal.code(),
        rej.detail,
        rej.method,
        rej.path,
        rej.remote_addr,
        rej.excerpt
    ])?;
    let newest = conn.last_insert_rowid();
    conn.prepare_cached("DELETE FROM rejected WHERE id <= ?1")?
        .execute([newest - REJECTED_KEPT])?;
    Ok(())
}

fn health_check(conn: &Connection) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO settings (key, value, updated_at) VALUES ('health_probe', '', ?1)
         ON CONFLICT (key) DO UPDATE SET updated_at = excluded.updated_at",
    )?
    .execute([crate::time::now_ms()])?;
    Ok(())
}

/// A webhook request for unit tests: one incoming message from contact "c".
#[cfg(test)]
impl IngestRequest {
    pub fn sample(text: &str, external_id: &str) -> IngestRequest {
        IngestRequest {
            received_at_ms: 1_000,
            method: "POST".into(),
            path: "/instagram/webhook".into(),
            query: String::new(),
            remote_addr: None,
            content_type: None,
            headers: "[]".into(),
            body: b"{}".to_vec(),
            messages: vec![NewMessage {
                sent_at_ms: None,
                channel: None,
                direction: crate::payload::Direction::In,
                contact_id: "c".into(),
                contact_name: None,
                username: None,
                profile_pic: None,
                text: Some(text.into()),
                attachments: Vec::new(),
                external_id: Some(external_id.into()),
            }],
            flag: None,
            is_test: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, external_id: &str) -> IngestRequest {
        let mut request = IngestRequest::sample("hi", external_id);
        request.path = path.into();
        request
    }

    /// One bad write in a batch must not take the others down with it, and must leave no
    /// trace of itself, in the tables or in the totals.
    #[test]
    fn a_failing_write_is_isolated_from_its_batch() {
        let mut store = Store::open(std::path::Path::new(":memory:")).unwrap();
        store
            .conn
            .execute_batch(
                "CREATE TRIGGER boom BEFORE INSERT ON raw_requests WHEN NEW.path = '/boom'
                 BEGIN SELECT RAISE(ABORT, 'boom'); END;",
            )
            .unwrap();
        let (a, bad, b) = (
            request("/a", "m1"),
            request("/boom", "m2"),
            request("/b", "m3"),
        );
        let writes = [Write::Ingest(&a), Write::Ingest(&bad), Write::Ingest(&b)];
        let rules = IngestRules {
            forward_targets: vec!["http://app".into()],
            dedup_window_ms: 2000,
        };
        let results = store.write_batch(&writes, &rules).unwrap();
        assert!(results[0].is_ok());
        assert!(results[1].is_err());
        assert!(results[2].is_ok());
        let count = |sql: &str| -> i64 { store.conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count("SELECT count(*) FROM raw_requests"), 2);
        assert_eq!(
            count("SELECT count(*) FROM messages WHERE external_id = 'm2'"),
            0
        );
        assert_eq!(count("SELECT count(*) FROM deliveries"), 2);
        assert_eq!(store.counter("webhooks_received").unwrap(), 2);
    }

    #[test]
    fn a_duplicate_corrects_its_requests_counts() {
        let mut store = Store::open(std::path::Path::new(":memory:")).unwrap();
        let (first, again) = (request("/a", "m1"), request("/a", "m1"));
        let results = store
            .write_batch(
                &[Write::Ingest(&first), Write::Ingest(&again)],
                &IngestRules::default(),
            )
            .unwrap();
        let outcome = results[1].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(outcome.duplicates, 1);
        let (stored, duplicates): (i64, i64) = store
            .conn
            .query_row(
                "SELECT stored, duplicates FROM raw_requests WHERE id = ?1",
                [outcome.request_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((stored, duplicates), (0, 1));
        assert_eq!(store.counter("duplicates").unwrap(), 1);
    }

    /// A Chatrace message: no id, no sender time.
    fn untimed(text: &str, at_ms: i64) -> IngestRequest {
        let mut request = IngestRequest::sample(text, "unused");
        request.messages[0].external_id = None;
        request.received_at_ms = at_ms;
        request
    }

    fn ingest_one(store: &mut Store, request: &IngestRequest, window_ms: i64) -> IngestOutcome {
        let rules = IngestRules {
            forward_targets: Vec::new(),
            dedup_window_ms: window_ms,
        };
        let results = store
            .write_batch(&[Write::Ingest(request)], &rules)
            .unwrap();
        results.into_iter().next().unwrap().unwrap().unwrap()
    }

    #[test]
    fn a_repeat_without_an_id_is_merged_only_within_the_window() {
        let mut store = Store::open(std::path::Path::new(":memory:")).unwrap();
        let first = ingest_one(&mut store, &untimed("ok", 10_000), 2_000);
        assert_eq!(first.stored_ids.len(), 1);
        // The same request again a second later: a flow that fired twice.
        let again = ingest_one(&mut store, &untimed("ok", 11_000), 2_000);
        assert_eq!((again.stored_ids.len(), again.duplicates), (0, 1));
        let merged_into: i64 = store
            .conn
            .query_row("SELECT message_id FROM merged", [], |r| r.get(0))
            .unwrap();
        assert_eq!(merged_into, first.stored_ids[0]);
        // A minute later it is the person writing "ok" again.
        let later = ingest_one(&mut store, &untimed("ok", 71_000), 2_000);
        assert_eq!(later.stored_ids.len(), 1);
        // Another text, or the window turned off, is always a new message.
        assert_eq!(
            ingest_one(&mut store, &untimed("ok!", 71_500), 2_000).duplicates,
            0
        );
        assert_eq!(
            ingest_one(&mut store, &untimed("ok", 71_600), 0).duplicates,
            0
        );
    }

    #[test]
    fn one_request_carrying_the_same_text_twice_keeps_both() {
        let mut store = Store::open(std::path::Path::new(":memory:")).unwrap();
        let mut request = untimed("ok", 5_000);
        request.messages.push(request.messages[0].clone());
        assert_eq!(ingest_one(&mut store, &request, 2_000).stored_ids.len(), 2);
    }

    #[test]
    fn a_keyed_duplicate_names_the_message_it_repeats() {
        let mut store = Store::open(std::path::Path::new(":memory:")).unwrap();
        let first = ingest_one(&mut store, &IngestRequest::sample("hi", "m1"), 2_000);
        let again = ingest_one(&mut store, &IngestRequest::sample("hi", "m1"), 2_000);
        assert_eq!(again.duplicates, 1);
        let merged = store.recent_merged(10, 100).unwrap();
        assert_eq!(merged[0].message_id, Some(first.stored_ids[0]));
    }
}
