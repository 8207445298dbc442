//! The group-commit writer: the thread that writes every webhook, rejection and health
//! check. Workers hand it their writes; it commits everything that queued up while the
//! previous fsync ran as one transaction, so many webhooks share one fsync and none is
//! answered before COMMIT.
//!
//! It is not the only writer. A few rare writes go straight from the thread that makes
//! them, each in one short statement, because queueing them behind a batch would gain
//! nothing: each forwarding thread records its delivery attempts (`forward`), a reply sent
//! through Chatrace stores its copy (`reply`), the checklist caches its token verdict
//! (`checklist`), and the replay buttons and command re-queue deliveries. SQLite serialises them with the writer through its write lock; the busy
//! timeout covers the wait.
//!
//! A webhook's worker does not wait for its commit: it hands over the write with a
//! continuation and goes back to accepting requests. After the batch commits (or fails),
//! the writer passes each continuation its outcome through a small responder pool, which
//! builds and sends the answer. The writer itself never blocks on a client's socket, and
//! one batch can carry every webhook in flight rather than one per worker thread.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use log::{error, warn};

use crate::error::{Error, Result};
use crate::store::{IngestOutcome, IngestRequest, IngestRules, Rejection, Store, Write};

/// Largest number of writes committed together; bounds a batch's latency.
const MAX_BATCH: usize = 256;
/// Writes that may wait for the writer; past this, rejections are dropped rather than
/// letting a flood of bad requests stall good ones, and a worker handing over a webhook
/// waits (backpressure).
const QUEUE: usize = 4096;
/// Threads that answer committed webhooks. Building and sending a small JSON answer is
/// cheap; two keep one slow client socket from holding up every other answer.
const RESPONDERS: usize = 2;

/// What happens to a webhook once its batch has committed or failed; called exactly once,
/// on a responder thread. Dropping it uncalled must still answer the client (the HTTP
/// layer's continuation answers 503 when dropped).
pub type Done = Box<dyn FnOnce(Result<IngestOutcome>) + Send>;

type Answer = (Done, Result<IngestOutcome>);

enum Job {
    Ingest(Box<IngestRequest>, Done),
    Reject(Rejection),
    HealthCheck(SyncSender<Result<()>>),
}

/// The handle workers use to reach the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: SyncSender<Job>,
    newest: Arc<NewestMessage>,
    /// Set once the database can never be written again; the relay must then exit.
    fatal: Arc<OnceLock<String>>,
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
    pub fn start(store: Store, rules: IngestRules) -> Result<Writer> {
        let (jobs, queue) = mpsc::sync_channel(QUEUE);
        let newest = Arc::new(NewestMessage::default());
        newest.publish(store.newest_message_id()?);
        let fatal = Arc::new(OnceLock::new());
        let mut thread_state = WriterThread {
            store,
            rules,
            newest: Arc::clone(&newest),
            answers: start_responders()?,
            fatal: Arc::clone(&fatal),
        };
        thread::Builder::new()
            .name("writer".into())
            .spawn(move || thread_state.run(&queue))?;
        Ok(Writer {
            jobs,
            newest,
            fatal,
        })
    }

    /// Queues a webhook request for the next batch and returns at once (or waits while the
    /// queue is full). `done` is called with the outcome only after the batch is committed
    /// to disk, or with the error if it was not; if the writer has stopped, right here.
    pub fn ingest(&self, request: IngestRequest, done: Done) {
        if let Err(mpsc::SendError(Job::Ingest(_, done))) =
            self.jobs.send(Job::Ingest(Box::new(request), done))
        {
            done(Err(Error::WriterStopped));
        }
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
    pub fn health_check(&self) -> Result<()> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.jobs
            .send(Job::HealthCheck(reply))
            .map_err(|_| Error::WriterStopped)?;
        answer.recv().map_err(|_| Error::WriterStopped)?
    }

    pub fn newest(&self) -> &Arc<NewestMessage> {
        &self.newest
    }

    /// Why nothing can be stored any more, once that is so: the process should exit, so
    /// that the failure is loud and systemd starts it again.
    pub fn fatal(&self) -> Option<String> {
        self.fatal.get().cloned()
    }
}

/// Starts the responder threads; returns the channel the writer hands outcomes to.
fn start_responders() -> Result<Sender<Answer>> {
    let (answers, outcomes) = mpsc::channel::<Answer>();
    let outcomes = Arc::new(Mutex::new(outcomes));
    for n in 0..RESPONDERS {
        let outcomes = Arc::clone(&outcomes);
        thread::Builder::new()
            .name(format!("responder-{n}"))
            .spawn(move || loop {
                let next = outcomes.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok((done, result)) = next else {
                    return;
                };
                finish(done, result);
            })?;
    }
    Ok(answers)
}

/// Runs a continuation; a panic in it is logged and must not take its thread down.
fn finish(done: Done, result: Result<IngestOutcome>) {
    if catch_unwind(AssertUnwindSafe(|| done(result))).is_err() {
        error!("answering a stored webhook panicked");
    }
}

/// Hands an outcome to the responders; should they all be gone, answers here instead.
fn answer(answers: &Sender<Answer>, done: Done, result: Result<IngestOutcome>) {
    if let Err(mpsc::SendError((done, result))) = answers.send((done, result)) {
        finish(done, result);
    }
}

/// What the writer thread holds: its connection, how webhooks are written, and where what
/// it learns goes (the newest id, the responders, the reason to stop).
struct WriterThread {
    store: Store,
    rules: IngestRules,
    newest: Arc<NewestMessage>,
    answers: Sender<Answer>,
    fatal: Arc<OnceLock<String>>,
}

impl WriterThread {
    fn run(&mut self, queue: &Receiver<Job>) {
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
            self.commit(&mut batch);
        }
    }

    fn commit(&mut self, batch: &mut Vec<Job>) {
        // One stat per batch: a commit into a deleted file would be acknowledged and lost.
        if let Some(gone) = self.store.file_gone() {
            if self.fatal.set(gone.clone()).is_ok() {
                error!("{gone}: nothing can be stored; the relay stops");
            }
            fail_batch(batch, &self.answers, &gone);
            return;
        }
        let writes: Vec<Write> = batch
            .iter()
            .map(|job| match job {
                Job::Ingest(req, _) => Write::Ingest(req),
                Job::Reject(rej) => Write::Reject(rej),
                Job::HealthCheck(_) => Write::HealthCheck,
            })
            .collect();
        let outcome = self.store.write_batch(&writes, &self.rules);
        drop(writes);
        match outcome {
            Ok(results) => {
                let mut max_id = 0;
                for (job, result) in batch.drain(..).zip(results) {
                    match job {
                        Job::Ingest(_, done) => {
                            let result = result.and_then(|o| {
                                o.ok_or_else(|| Error::NotStored("no outcome recorded".into()))
                            });
                            if let Ok(o) = &result {
                                max_id =
                                    max_id.max(o.stored_ids.iter().copied().max().unwrap_or(0));
                            }
                            answer(&self.answers, done, result);
                        }
                        Job::HealthCheck(reply) => {
                            let _ = reply.send(result.map(|_| ()));
                        }
                        Job::Reject(_) => {
                            if let Err(e) = result {
                                warn!("rejection not logged: {e}");
                            }
                        }
                    }
                }
                self.newest.publish(max_id);
            }
            Err(e) => {
                // Nothing in the batch was committed: every webhook in it is answered 503.
                error!("write batch of {} failed: {e}", batch.len());
                fail_batch(batch, &self.answers, &e.to_string());
            }
        }
    }
}

/// Answers every job of a batch that was not committed.
fn fail_batch(batch: &mut Vec<Job>, answers: &Sender<Answer>, reason: &str) {
    for job in batch.drain(..) {
        match job {
            Job::Ingest(_, done) => {
                answer(answers, done, Err(Error::NotStored(reason.to_string())));
            }
            Job::HealthCheck(reply) => {
                let _ = reply.send(Err(Error::NotStored(reason.to_string())));
            }
            Job::Reject(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome() -> IngestOutcome {
        IngestOutcome {
            request_id: 1,
            stored_ids: vec![1],
            outgoing: 0,
            duplicates: 0,
        }
    }

    #[test]
    fn a_panicking_continuation_does_not_stop_the_responders() {
        let answers = start_responders().unwrap();
        for _ in 0..RESPONDERS {
            answer(&answers, Box::new(|_| panic!("boom")), Ok(outcome()));
        }
        let (tx, rx) = mpsc::channel();
        for _ in 0..RESPONDERS * 2 {
            let tx = tx.clone();
            answer(
                &answers,
                Box::new(move |r| tx.send(r.is_ok()).unwrap()),
                Ok(outcome()),
            );
        }
        for _ in 0..RESPONDERS * 2 {
            assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap());
        }
    }

    #[test]
    fn a_stopped_writer_answers_at_once_with_an_error() {
        let (jobs, queue) = mpsc::sync_channel(1);
        drop(queue);
        let writer = Writer {
            jobs,
            newest: Arc::default(),
            fatal: Arc::default(),
        };
        let (tx, rx) = mpsc::channel();
        let request = IngestRequest::sample("hi", "w1");
        writer.ingest(request, Box::new(move |r| tx.send(r.is_err()).unwrap()));
        assert!(rx.try_recv().unwrap());
    }
}
