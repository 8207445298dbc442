//! The group-commit writer: the one thread that writes to the database. Workers hand it
//! their writes and wait; it commits everything that queued up while the previous fsync ran
//! as one transaction, so many webhooks share one fsync and none is answered before COMMIT.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use log::{error, warn};

use crate::error::{Error, Result};
use crate::store::{IngestOutcome, IngestRequest, Rejection, Store};

/// Largest number of writes committed together; bounds a batch's latency.
const MAX_BATCH: usize = 256;
/// Writes that may wait for the writer; past this, rejections are dropped rather than
/// letting a flood of bad requests stall good ones.
const QUEUE: usize = 4096;

enum Job {
    Ingest(Box<IngestRequest>, SyncSender<Result<IngestOutcome>>),
    Reject(Rejection),
    Probe(SyncSender<Result<()>>),
}

/// The handle workers use to reach the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: SyncSender<Job>,
    newest: Arc<NewestMessage>,
}

/// The newest committed message id, with a way to wait for it to grow: long-polling readers
/// and the forwarder sleep on it instead of polling the database.
#[derive(Default)]
pub struct NewestMessage {
    id: Mutex<i64>,
    grew: Condvar,
}

impl NewestMessage {
    pub fn get(&self) -> i64 {
        *self.id.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, id: i64) {
        let mut newest = self.id.lock().unwrap_or_else(|p| p.into_inner());
        if id > *newest {
            *newest = id;
            self.grew.notify_all();
        }
    }

    /// Waits up to `timeout` for a message newer than `after`; returns the newest id.
    pub fn wait_beyond(&self, after: i64, timeout: Duration) -> i64 {
        let guard = self.id.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .grew
            .wait_timeout_while(guard, timeout, |newest| *newest <= after)
            .unwrap_or_else(|p| p.into_inner());
        *guard
    }
}

impl Writer {
    /// Starts the writer thread on its own connection.
    pub fn start(mut store: Store, forward_targets: Vec<String>) -> Result<Writer> {
        let (jobs, queue) = mpsc::sync_channel(QUEUE);
        let newest = Arc::new(NewestMessage::default());
        newest.publish(store.newest_message_id()?);
        let published = Arc::clone(&newest);
        thread::Builder::new()
            .name("writer".into())
            .spawn(move || run(&mut store, &queue, &forward_targets, &published))?;
        Ok(Writer { jobs, newest })
    }

    /// Stores a webhook request; returns only after it is committed to disk.
    pub fn ingest(&self, request: IngestRequest) -> Result<IngestOutcome> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.jobs
            .send(Job::Ingest(Box::new(request), reply))
            .map_err(|_| Error::WriterStopped)?;
        answer.recv().map_err(|_| Error::WriterStopped)?
    }

    /// Logs a rejected request without waiting. Best effort by design: under a flood the
    /// log is the first thing to give way.
    pub fn reject(&self, rejection: Rejection) {
        match self.jobs.try_send(Job::Reject(rejection)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => warn!("writer queue full: rejection not logged"),
            Err(TrySendError::Disconnected(_)) => error!("writer stopped: rejection not logged"),
        }
    }

    /// Proves that a write can be committed right now.
    pub fn probe(&self) -> Result<()> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.jobs
            .send(Job::Probe(reply))
            .map_err(|_| Error::WriterStopped)?;
        answer.recv().map_err(|_| Error::WriterStopped)?
    }

    pub fn newest(&self) -> &Arc<NewestMessage> {
        &self.newest
    }
}

fn run(store: &mut Store, queue: &Receiver<Job>, targets: &[String], newest: &NewestMessage) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Blocks for the first job, then takes whatever else is already waiting.
    while let Ok(first) = queue.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit(store, &mut batch, targets, newest);
    }
}

fn commit(store: &mut Store, batch: &mut Vec<Job>, targets: &[String], newest: &NewestMessage) {
    use crate::store::Write;
    let writes: Vec<Write> = batch
        .iter()
        .map(|job| match job {
            Job::Ingest(req, _) => Write::Ingest(req),
            Job::Reject(rej) => Write::Reject(rej),
            Job::Probe(_) => Write::Probe,
        })
        .collect();
    let outcome = store.write_batch(&writes, targets);
    drop(writes);
    match outcome {
        Ok(results) => {
            let mut max_id = 0;
            for (job, result) in batch.drain(..).zip(results) {
                match job {
                    Job::Ingest(_, reply) => {
                        let result = result.and_then(|o| {
                            o.ok_or_else(|| Error::NotStored("no outcome recorded".into()))
                        });
                        if let Ok(o) = &result {
                            max_id = max_id.max(o.stored_ids.iter().copied().max().unwrap_or(0));
                        }
                        let _ = reply.send(result);
                    }
                    Job::Probe(reply) => {
                        let _ = reply.send(result.map(|_| ()));
                    }
                    Job::Reject(_) => {
                        if let Err(e) = result {
                            warn!("rejection not logged: {e}");
                        }
                    }
                }
            }
            newest.publish(max_id);
        }
        Err(e) => {
            // Nothing in the batch was committed: every waiting worker answers 503.
            error!("write batch of {} failed: {e}", batch.len());
            let reason = e.to_string();
            for job in batch.drain(..) {
                match job {
                    Job::Ingest(_, reply) => {
                        let _ = reply.send(Err(Error::NotStored(reason.clone())));
                    }
                    Job::Probe(reply) => {
                        let _ = reply.send(Err(Error::NotStored(reason.clone())));
                    }
                    Job::Reject(_) => {}
                }
            }
        }
    }
}
