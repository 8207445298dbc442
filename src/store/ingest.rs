//! The write side of the store: webhook requests and their messages, rejections, the
//! outbox rows for forwarding. Called only from the group-commit writer thread.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::Store;
use crate::error::Result;
use crate::payload::{Flag, NewMessage};

/// Without an external id or a sender time, the same contact sending the same text again
/// within this window is taken as a repeat of the same webhook, later as a new message.
const WEAK_DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;

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
    pub duplicates: usize,
}

/// A request turned away, for the bounded log the setup page shows.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub received_at_ms: i64,
    /// Machine-readable: bad_secret, missing_secret, wrong_path, malformed, too_large,
    /// incomplete...
    pub reason: &'static str,
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
        forward_targets: &[String],
    ) -> Result<Vec<Result<Option<IngestOutcome>>>> {
        // Writes almost never fail one by one (a full disk fails them all), so the batch
        // first runs without savepoints, which would re-journal every page the batch has
        // already touched once per write. Only if a write fails is it all redone with a
        // savepoint per write, to keep the good ones.
        if let Some(results) = self.write_all_or_nothing(writes, forward_targets)? {
            return Ok(results);
        }
        self.write_each_isolated(writes, forward_targets)
    }

    /// The batch in one plain transaction; None, with nothing written, if any write failed.
    fn write_all_or_nothing(
        &mut self,
        writes: &[Write<'_>],
        forward_targets: &[String],
    ) -> Result<Option<Vec<Result<Option<IngestOutcome>>>>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(writes.len());
        let mut totals: Vec<(String, i64)> = Vec::new();
        for write in writes {
            let result = apply(&tx, write, forward_targets);
            if result.is_err() {
                return Ok(None); // dropping the transaction rolls it back
            }
            count(&mut totals, write, &result);
            results.push(result);
        }
        for (name, by) in &totals {
            bump(&tx, name, *by)?;
        }
        tx.commit()?;
        Ok(Some(results))
    }

    fn write_each_isolated(
        &mut self,
        writes: &[Write<'_>],
        forward_targets: &[String],
    ) -> Result<Vec<Result<Option<IngestOutcome>>>> {
        let mut tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(writes.len());
        // Totals are added once per batch, not once per request: the counter rows are the
        // same for everyone, and one update each is all the transaction needs.
        let mut totals: Vec<(String, i64)> = Vec::new();
        for write in writes {
            let sp = tx.savepoint()?;
            let result = apply(&sp, write, forward_targets);
            if result.is_ok() {
                sp.commit()?;
                count(&mut totals, write, &result);
            } // else: dropping the savepoint rolls it back.
            results.push(result);
        }
        for (name, by) in &totals {
            bump(&tx, name, *by)?;
        }
        tx.commit()?;
        Ok(results)
    }
}

fn apply(
    conn: &Connection,
    write: &Write<'_>,
    forward_targets: &[String],
) -> Result<Option<IngestOutcome>> {
    match write {
        Write::Ingest(req) => ingest(conn, req, forward_targets).map(Some),
        Write::Reject(rej) => reject(conn, rej).map(|()| None),
        Write::HealthCheck => health_check(conn).map(|()| None),
    }
}

/// Adds what one committed write contributes to the totals of `counters`.
fn count(
    totals: &mut Vec<(String, i64)>,
    write: &Write<'_>,
    result: &Result<Option<IngestOutcome>>,
) {
    let mut add = |name: &str, by: i64| match totals.iter_mut().find(|(n, _)| n == name) {
        Some((_, total)) => *total += by,
        None => totals.push((name.to_string(), by)),
    };
    match (write, result) {
        (Write::Ingest(req), Ok(Some(outcome))) if !req.is_test => {
            add("webhooks_received", 1);
            add("duplicates", outcome.duplicates as i64);
        }
        (Write::Reject(rej), _) => add(&format!("rejected:{}", rej.reason), 1),
        _ => {}
    }
}

fn ingest(
    conn: &Connection,
    req: &IngestRequest,
    forward_targets: &[String],
) -> Result<IngestOutcome> {
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
        req.flag.as_ref().map(Flag::describe),
        req.is_test,
        // Written as if every message is new; corrected below in the rare duplicate case,
        // so the common request costs no second write of its row.
        req.messages.len() as i64,
    ])?;
    let request_id = conn.last_insert_rowid();
    let mut outcome = IngestOutcome {
        request_id,
        stored_ids: Vec::new(),
        duplicates: 0,
    };
    for msg in &req.messages {
        match insert_message(conn, request_id, req, msg)? {
            Some(id) => {
                outcome.stored_ids.push(id);
                if !req.is_test {
                    upsert_contact(conn, msg, req.received_at_ms)?;
                }
                if msg.direction == crate::payload::Direction::In {
                    for target in forward_targets {
                        conn.prepare_cached(
                            "INSERT INTO deliveries (message_id, target, next_attempt_at, created_at)
                             VALUES (?1, ?2, ?3, ?3)",
                        )?
                        .execute(params![id, target, req.received_at_ms])?;
                    }
                }
            }
            None => outcome.duplicates += 1,
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

/// Inserts the message unless it is a duplicate; returns the new id, or None for a duplicate.
fn insert_message(
    conn: &Connection,
    request_id: i64,
    req: &IngestRequest,
    msg: &NewMessage,
) -> Result<Option<i64>> {
    let attachments = serde_json::to_string(&msg.attachments).unwrap_or_else(|_| "[]".into());
    let key = msg.dedup_key();
    if key.is_none() {
        let seen: Option<i64> = conn
            .prepare_cached(
                // INDEXED BY: left alone, the planner walks the dedup index for
                // `dedup_key IS NULL`, i.e. every key-less message ever stored.
                "SELECT id FROM messages INDEXED BY messages_weak
                 WHERE contact_id = ?1 AND received_at >= ?2 AND dedup_key IS NULL
                   AND direction = ?3 AND text IS ?4 AND attachments = ?5
                 LIMIT 1",
            )?
            .query_row(
                params![
                    msg.contact_id,
                    req.received_at_ms - WEAK_DEDUP_WINDOW_MS,
                    msg.direction.as_str(),
                    msg.text,
                    attachments
                ],
                |r| r.get(0),
            )
            .optional()?;
        if seen.is_some() {
            return Ok(None);
        }
    }
    // ON CONFLICT names the dedup index only: any other constraint failure is a real error
    // and must surface, never be swallowed the way INSERT OR IGNORE would.
    let inserted = conn
        .prepare_cached(
            "INSERT INTO messages (raw_request_id, received_at, sent_at, channel, direction,
                                   contact_id, contact_name, username, text, attachments,
                                   external_id, dedup_key, is_test)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
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
            req.is_test,
        ])?;
    Ok((inserted == 1).then(|| conn.last_insert_rowid()))
}

fn upsert_contact(conn: &Connection, msg: &NewMessage, now: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO contacts (contact_id, contact_name, username, channel, first_seen,
                               last_seen, messages)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1)
         ON CONFLICT (contact_id) DO UPDATE SET
             contact_name = coalesce(excluded.contact_name, contact_name),
             username = coalesce(excluded.username, username),
             channel = coalesce(excluded.channel, channel),
             last_seen = max(last_seen, excluded.last_seen),
             messages = messages + 1",
    )?
    .execute(params![
        msg.contact_id,
        msg.contact_name,
        msg.username,
        msg.channel,
        now
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
        rej.reason,
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

fn bump(conn: &Connection, name: &str, by: i64) -> Result<()> {
    if by != 0 {
        conn.prepare_cached(
            "INSERT INTO counters (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
        )?
        .execute(params![name, by])?;
    }
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
        let results = store.write_batch(&writes, &["http://app".into()]).unwrap();
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
            .write_batch(&[Write::Ingest(&first), Write::Ingest(&again)], &[])
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
}
