//! Rollups: the counts the read side shows, kept exact by writing them in the same
//! transaction as what they count, so no reading ever scans the messages.
//!
//! - `counters`: `messages:in`, `messages:out` (real messages ever stored, by direction),
//!   `last_message_at` (the newest real message's time, a maximum rather than a sum),
//!   `contacts` (rows of `contacts`, kept by triggers), `webhooks_received`, `duplicates`,
//!   `rejected:<reason>`, and what retention deleted: `pruned:messages` (real messages),
//!   `pruned:raw_requests`.
//! - `daily`, `hourly`: real messages per UTC day and per hour since 1970.
//! - `caught_up` and `caught_up:live_chat` (counters), `caught_up_daily`: messages stored
//!   from Chatrace's inbox that no webhook brought, in all, and per day split by whether a
//!   person had the conversation.
//! - `delivery_counts`: deliveries ever made, per target and state, kept by triggers;
//!   retention's deletions leave them counted (since schema version 6).
//!
//! Retention deletes messages but not their counts: totals and daily figures keep counting
//! everything ever stored, so `messages:in + messages:out` equals the messages still
//! stored plus `pruned:messages`.

use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

#[cfg(test)]
use super::Store;
use crate::error::Result;
use crate::payload::dedup_hash;
use crate::time::day_number;

pub(super) const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// Rows re-keyed per statement batch during the upgrade, and between progress checks.
const REKEY_BATCH: i64 = 10_000;
/// How often a long upgrade step logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What one batch of writes adds to the totals and rollups, written once per batch.
#[derive(Debug, Default)]
pub(super) struct Tally {
    counters: Vec<(String, i64)>,
    days: Vec<(i64, i64)>,
    hours: Vec<(i64, i64)>,
    last_at: Option<i64>,
    /// (day, during live chat, other) of caught-up messages.
    caught_up: Vec<(i64, i64, i64)>,
}

impl Tally {
    pub fn add(&mut self, name: &str, by: i64) {
        match self.counters.iter_mut().find(|(n, _)| n == name) {
            Some((_, total)) => *total += by,
            None => self.counters.push((name.to_string(), by)),
        }
    }

    /// Real messages stored at `at_ms`: `incoming` received, `outgoing` sent.
    pub fn messages(&mut self, at_ms: i64, incoming: usize, outgoing: usize) {
        let n = (incoming + outgoing) as i64;
        if n == 0 {
            return;
        }
        self.add("messages:in", incoming as i64);
        self.add("messages:out", outgoing as i64);
        add_to(&mut self.days, day_number(at_ms), n);
        add_to(&mut self.hours, at_ms.div_euclid(HOUR_MS), n);
        self.last_at = Some(self.last_at.map_or(at_ms, |t| t.max(at_ms)));
    }

    /// One message caught up from the inbox at `at_ms`, during live chat or not.
    pub fn caught_up(&mut self, at_ms: i64, live_chat: bool) {
        self.add("caught_up", 1);
        if live_chat {
            self.add("caught_up:live_chat", 1);
        }
        let day = day_number(at_ms);
        let (l, o) = if live_chat { (1, 0) } else { (0, 1) };
        match self.caught_up.iter_mut().find(|(d, _, _)| *d == day) {
            Some((_, live, other)) => {
                *live += l;
                *other += o;
            }
            None => self.caught_up.push((day, l, o)),
        }
    }

    pub fn write(&self, conn: &Connection) -> Result<()> {
        for (day, live, other) in &self.caught_up {
            conn.prepare_cached(
                "INSERT INTO caught_up_daily (day, live_chat, other) VALUES (?1, ?2, ?3)
                 ON CONFLICT (day) DO UPDATE SET live_chat = live_chat + excluded.live_chat,
                                                 other = other + excluded.other",
            )?
            .execute(params![day, live, other])?;
        }
        for (name, by) in &self.counters {
            if *by != 0 {
                conn.prepare_cached(
                    "INSERT INTO counters (name, value) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                )?
                .execute(params![name, by])?;
            }
        }
        for (day, n) in &self.days {
            conn.prepare_cached(
                "INSERT INTO daily (day, messages) VALUES (?1, ?2)
                 ON CONFLICT (day) DO UPDATE SET messages = messages + excluded.messages",
            )?
            .execute(params![day, n])?;
        }
        for (hour, n) in &self.hours {
            conn.prepare_cached(
                "INSERT INTO hourly (hour, messages) VALUES (?1, ?2)
                 ON CONFLICT (hour) DO UPDATE SET messages = messages + excluded.messages",
            )?
            .execute(params![hour, n])?;
        }
        if let Some(at) = self.last_at {
            conn.prepare_cached(
                "INSERT INTO counters (name, value) VALUES ('last_message_at', ?1)
                 ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
            )?
            .execute([at])?;
        }
        Ok(())
    }
}

fn add_to(list: &mut Vec<(i64, i64)>, key: i64, by: i64) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some((_, total)) => *total += by,
        None => list.push((key, by)),
    }
}

/// Every count the rollups hold, in one comparable value: read from the rollups, or
/// recounted from the rows themselves (the tests' and the upgrade's check).
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollups {
    pub messages_in: i64,
    pub messages_out: i64,
    pub last_message_at: Option<i64>,
    pub contacts: i64,
    /// (day, messages), days with messages only, oldest first.
    pub daily: Vec<(i64, i64)>,
    /// (hour, messages), hours with messages only, oldest first.
    pub hourly: Vec<(i64, i64)>,
    /// (target, state, deliveries), non-zero only, in that order.
    pub deliveries: Vec<(String, String, i64)>,
}

#[cfg(test)]
impl Store {
    /// The rollups as stored.
    pub fn rollups(&self) -> Result<Rollups> {
        let c = &self.conn;
        let counter = |name: &str| self.counter(name);
        let last: i64 = counter("last_message_at")?;
        Ok(Rollups {
            messages_in: counter("messages:in")?,
            messages_out: counter("messages:out")?,
            last_message_at: (last != 0).then_some(last),
            contacts: counter("contacts")?,
            daily: pairs(
                c,
                "SELECT day, messages FROM daily WHERE messages != 0 ORDER BY day",
            )?,
            hourly: pairs(
                c,
                "SELECT hour, messages FROM hourly WHERE messages != 0 ORDER BY hour",
            )?,
            deliveries: triples(
                c,
                "SELECT target, state, deliveries FROM delivery_counts
                 WHERE deliveries != 0 ORDER BY target, state",
            )?,
        })
    }

    /// The same figures counted from the rows: a full scan, for tests and checks only.
    pub fn recount(&self) -> Result<Rollups> {
        let c = &self.conn;
        let one = |sql: &str| -> Result<i64> { Ok(c.query_row(sql, [], |r| r.get(0))?) };
        Ok(Rollups {
            messages_in: one(
                "SELECT count(*) FROM messages WHERE is_test = 0 AND direction = 'in'",
            )?,
            messages_out: one(
                "SELECT count(*) FROM messages WHERE is_test = 0 AND direction = 'out'",
            )?,
            last_message_at: c.query_row(
                "SELECT max(received_at) FROM messages WHERE is_test = 0",
                [],
                |r| r.get(0),
            )?,
            contacts: one("SELECT count(*) FROM contacts")?,
            daily: pairs(c, &group_by(DAY_MS))?,
            hourly: pairs(c, &group_by(HOUR_MS))?,
            deliveries: triples(
                c,
                "SELECT target, state, count(*) FROM deliveries
                 GROUP BY target, state ORDER BY target, state",
            )?,
        })
    }
}

/// Real messages grouped by `period` (floor division, like `day_number`).
fn group_by(period: i64) -> String {
    format!(
        "SELECT (received_at - ((received_at % {period}) + {period}) % {period}) / {period} AS p,
                count(*)
         FROM messages WHERE is_test = 0 GROUP BY p ORDER BY p"
    )
}

#[cfg(test)]
fn pairs(conn: &Connection, sql: &str) -> Result<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
fn triples(conn: &Connection, sql: &str) -> Result<Vec<(String, String, i64)>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The data part of the upgrade to version 4, inside the migration's transaction: fills the
/// message rollups from the messages (one indexed pass each), then replaces every text dedup
/// key by its 16-byte hash. A key is re-hashed from the very text it held, so a message
/// stored before the upgrade still catches a copy sent again after it.
pub(super) fn backfill_and_rekey(conn: &Connection) -> Result<()> {
    let started = Instant::now();
    let messages: i64 = conn.query_row("SELECT coalesce(max(id), 0) FROM messages", [], |r| {
        r.get(0)
    })?;
    log::info!("upgrade: counting the messages into rollups (newest message id {messages})");
    // A bigger page cache for the bulk work; the connection's usual small one comes back
    // below.
    let cache: i64 = conn.pragma_query_value(None, "cache_size", |r| r.get(0))?;
    conn.pragma_update(None, "cache_size", -65_536)?;
    conn.execute_batch(&format!(
        "INSERT INTO daily (day, messages) {};
         INSERT INTO hourly (hour, messages) {};
         INSERT INTO counters (name, value)
             SELECT 'messages:' || direction, count(*) FROM messages WHERE is_test = 0
             GROUP BY direction
             ON CONFLICT (name) DO UPDATE SET value = excluded.value;
         INSERT INTO counters (name, value)
             SELECT 'last_message_at', max(received_at) FROM messages WHERE is_test = 0
             HAVING max(received_at) IS NOT NULL
             ON CONFLICT (name) DO UPDATE SET value = excluded.value;",
        group_by(DAY_MS),
        group_by(HOUR_MS)
    ))?;
    log::info!(
        "upgrade: rollups filled in {:.1} s; re-keying messages to 16-byte dedup hashes",
        started.elapsed().as_secs_f64()
    );
    // Re-keying through the unique index would update it once per row in random order:
    // dropping it and building it again afterwards is one sort.
    conn.execute_batch("DROP INDEX messages_dedup")?;
    let mut after = 0i64;
    let mut done = 0i64;
    let mut last_log = Instant::now();
    loop {
        let keys: Vec<(i64, String)> = {
            let mut stmt = conn.prepare_cached(
                "SELECT id, dedup_key FROM messages
                 WHERE id > ?1 AND typeof(dedup_key) = 'text' ORDER BY id LIMIT ?2",
            )?;
            let rows =
                stmt.query_map(params![after, REKEY_BATCH], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let Some(&(last, _)) = keys.last() else {
            break;
        };
        let mut update = conn.prepare_cached("UPDATE messages SET dedup_key = ?2 WHERE id = ?1")?;
        for (id, key) in &keys {
            update.execute(params![id, &dedup_hash(key)[..]])?;
        }
        done += keys.len() as i64;
        after = last;
        if last_log.elapsed() >= PROGRESS_EVERY {
            last_log = Instant::now();
            log::info!(
                "upgrade: re-keyed {done} messages (up to id {after} of {messages}), {:.0} s so far",
                started.elapsed().as_secs_f64()
            );
        }
    }
    log::info!("upgrade: re-keyed {done} messages; rebuilding the dedup index");
    conn.execute_batch("CREATE UNIQUE INDEX messages_dedup ON messages (dedup_key)")?;
    conn.pragma_update(None, "cache_size", cache)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Direction;
    use crate::store::{Attempt, AttemptResult, IngestRequest, IngestRules, Requeue, Write};

    /// A small deterministic generator: the same "random" history every run.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, below: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (self.0 >> 33) % below
        }
    }

    fn random_request(rng: &mut Lcg, at_ms: i64) -> IngestRequest {
        let mut request = IngestRequest::sample("x", "unused");
        request.received_at_ms = at_ms;
        request.is_test = rng.next(10) == 0;
        let n = 1 + rng.next(3) as usize;
        let template = request.messages[0].clone();
        request.messages = (0..n)
            .map(|_| {
                let mut m = template.clone();
                m.contact_id = format!("c{}", rng.next(20));
                m.text = Some(format!("text {}", rng.next(50)));
                m.direction = if rng.next(8) == 0 {
                    Direction::Out
                } else {
                    Direction::In
                };
                // Few ids, so repeats are common; some timed, some with neither.
                match rng.next(3) {
                    0 => m.external_id = Some(format!("x{}", rng.next(200))),
                    1 => {
                        m.external_id = None;
                        m.sent_at_ms = Some(1_000 * rng.next(100) as i64);
                    }
                    _ => m.external_id = None,
                }
                m
            })
            .collect();
        request
    }

    fn prune_all(store: &mut Store, before_ms: i64) {
        let mut after = 0;
        while let Some(next) = store
            .prune_messages(before_ms, after, 7)
            .unwrap()
            .next_after
        {
            after = next;
        }
        while store.prune_contacts(before_ms, 3).unwrap() > 0 {}
        let mut after = 0;
        while let Some(next) = store
            .prune_raw_requests(before_ms, after, 7)
            .unwrap()
            .next_after
        {
            after = next;
        }
    }

    #[test]
    fn rollups_equal_a_full_recount_after_random_ingest_replies_and_retention() {
        let mut store = Store::open(std::path::Path::new(":memory:")).unwrap();
        let mut rng = Lcg(42);
        let rules = IngestRules {
            forward_targets: vec!["http://a".into(), "http://b".into()],
            dedup_window_ms: 2_000,
        };
        let day = DAY_MS;
        let start = 20_000 * day + 5 * HOUR_MS;
        let mut at = start;
        for round in 0..60 {
            let requests: Vec<IngestRequest> = (0..1 + rng.next(8))
                .map(|_| {
                    at += rng.next(3 * HOUR_MS as u64) as i64;
                    random_request(&mut rng, at)
                })
                .collect();
            let writes: Vec<Write> = requests.iter().map(Write::Ingest).collect();
            store.write_batch(&writes, &rules).unwrap();
            if round % 5 == 0 {
                store
                    .insert_sent_message(&format!("c{}", rng.next(20)), "instagram", "hi", at)
                    .unwrap();
            }
            // Move some deliveries along, as the forwarder and the replay button do.
            let due = store.due_deliveries("http://a", i64::MAX, 5).unwrap();
            let attempts: Vec<Attempt> = due
                .iter()
                .enumerate()
                .map(|(i, d)| Attempt {
                    delivery_id: d.id,
                    at_ms: at,
                    number: 1,
                    result: if i % 2 == 0 {
                        AttemptResult::Delivered { status: 200 }
                    } else {
                        AttemptResult::Failed {
                            status: Some(410),
                            error: "gone".into(),
                        }
                    },
                })
                .collect();
            store.record_attempts(&attempts).unwrap();
            if round % 20 == 19 {
                store
                    .requeue(Requeue::Failed { since_ms: 0 }, &[], at)
                    .unwrap();
            }
            assert_eq!(store.rollups().unwrap(), store.recount().unwrap());
        }
        let before = store.rollups().unwrap();
        assert!(before.messages_in > 50 && before.messages_out > 5 && before.daily.len() > 3);
        assert!(store.counter("duplicates").unwrap() > 0);
        let test_messages: i64 = store
            .conn
            .query_row("SELECT count(*) FROM messages WHERE is_test = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(test_messages > 0, "test messages exist and are not counted");

        // Retention: delete everything older than the middle of the history.
        let cut = start + (at - start) / 2;
        let pending_old: i64 = store
            .conn
            .query_row(
                "SELECT count(DISTINCT m.id) FROM messages m JOIN deliveries d ON d.message_id = m.id
                 WHERE d.state = 'pending' AND m.received_at < ?1",
                [cut],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            pending_old > 0,
            "some old messages still wait for forwarding"
        );
        prune_all(&mut store, cut);
        let after = store.rollups().unwrap();
        let recount = store.recount().unwrap();
        // Counts of what was stored are kept; what is left is exactly the recount plus
        // what retention deleted.
        assert_eq!(after.daily, before.daily);
        assert_eq!(after.hourly, before.hourly);
        assert_eq!(
            after.messages_in + after.messages_out,
            recount.messages_in + recount.messages_out + store.counter("pruned:messages").unwrap()
        );
        assert_eq!(after.contacts, recount.contacts);
        // Deliveries deleted with their messages stay counted, in the state they ended in.
        assert_eq!(after.deliveries, before.deliveries);
        let count = |sql: &str| -> i64 { store.conn.query_row(sql, [cut], |r| r.get(0)).unwrap() };
        // Exactly the old messages went, except those still pending for forwarding.
        assert_eq!(
            count("SELECT count(*) FROM messages WHERE received_at < ?1"),
            pending_old
        );
        assert_eq!(
            count(
                "SELECT count(*) FROM messages m WHERE received_at < ?1 AND NOT EXISTS
                 (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state = 'pending')"
            ),
            0
        );
        assert!(count("SELECT count(*) FROM messages WHERE received_at >= ?1") > 0);
        assert_eq!(
            count("SELECT count(*) FROM raw_requests WHERE received_at < ?1"),
            0
        );
        assert_eq!(
            count("SELECT count(*) FROM contacts WHERE last_seen < ?1"),
            0
        );
        let fk: Vec<String> = store
            .conn
            .prepare("PRAGMA foreign_key_check")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(fk.is_empty(), "dangling references: {fk:?}");
        // The stats read the same figures.
        let stats = store.stats(at, &crate::zone::Zone::utc()).unwrap();
        assert_eq!(stats.total_messages, after.messages_in + after.messages_out);
        assert_eq!(stats.unique_contacts, recount.contacts);
    }

    #[test]
    fn the_last_24_hours_are_exact_to_the_millisecond() {
        let mut store = Store::open(std::path::Path::new(":memory:")).unwrap();
        let now = 20_000 * DAY_MS + 13 * HOUR_MS + 1_234;
        let times = [
            now - DAY_MS - 1,
            now - DAY_MS,
            now - DAY_MS + 1,
            now - DAY_MS + HOUR_MS,
            now - 5,
            now,
        ];
        let requests: Vec<IngestRequest> = times
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut r = IngestRequest::sample("hi", &format!("m{i}"));
                r.received_at_ms = *t;
                r
            })
            .collect();
        let writes: Vec<Write> = requests.iter().map(Write::Ingest).collect();
        store.write_batch(&writes, &IngestRules::default()).unwrap();
        let stats = store.stats(now, &crate::zone::Zone::utc()).unwrap();
        assert_eq!(stats.messages_last_24h, 5);
        assert_eq!(stats.total_messages, 6);
        assert_eq!(stats.messages_today, 2);
    }
}
