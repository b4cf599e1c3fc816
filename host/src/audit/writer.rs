//! [`SqliteAuditSink`]: the `AuditSink` that writes to the audit log store.
//!
//! `record` stamps the time and hands the event to one background thread over
//! a bounded queue; the thread writes whatever has queued up in one
//! transaction. Why not a mutex and one INSERT per call: the state database is
//! shared with other modules, and a write there can wait on their locks (up to
//! the busy timeout), which must not stall a request path; batching also
//! makes a burst of egress events one commit instead of hundreds.
//!
//! A full queue makes `record` wait (backpressure) rather than drop an event:
//! an audit log with holes is worse than a slow one. [`SqliteAuditSink::flush`]
//! returns once everything recorded before it is committed; dropping the sink
//! flushes too. Events still in the queue when the process dies are lost, so
//! callers flush at the points they acknowledge (end of an execution, shutdown).

use super::event::AuditEvent;
use super::store::{AuditStore, AuditStoreError};
use super::AuditSink;
use crate::clock::Clock;
use chrono::{DateTime, Utc};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How many events may wait for the writer before `record` waits.
pub const DEFAULT_QUEUE: usize = 4096;
/// The most events one transaction writes.
const MAX_BATCH: usize = 512;
/// Attempts per batch before the writer reports the batch lost.
const ATTEMPTS: u32 = 5;

enum Message {
    Event(AuditEvent, DateTime<Utc>),
    Flush(SyncSender<Result<(), String>>),
}

/// Writes audit events to the state database in the background (see the module doc).
pub struct SqliteAuditSink {
    queue: Mutex<Option<SyncSender<Message>>>,
    clock: Arc<dyn Clock>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl SqliteAuditSink {
    /// Open the store at `path` and start the writer thread.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<SqliteAuditSink, AuditStoreError> {
        SqliteAuditSink::with_queue(path, clock, DEFAULT_QUEUE)
    }

    pub fn with_queue(path: &Path, clock: Arc<dyn Clock>, capacity: usize) -> Result<SqliteAuditSink, AuditStoreError> {
        let store = AuditStore::open(path)?;
        let (tx, rx) = sync_channel(capacity.max(1));
        let writer = std::thread::Builder::new()
            .name("flowstudio-audit".into())
            .spawn(move || write_loop(store, rx))
            .map_err(|e| AuditStoreError::Writer(format!("thread could not start: {e}")))?;
        Ok(SqliteAuditSink { queue: Mutex::new(Some(tx)), clock, writer: Mutex::new(Some(writer)) })
    }

    /// Wait until every event recorded before this call is committed. Fails
    /// if a batch could not be written since the last flush. Blocks the thread:
    /// from async code, call it in `spawn_blocking`.
    pub fn flush(&self) -> Result<(), AuditStoreError> {
        let (done_tx, done_rx) = sync_channel(1);
        let stopped = || AuditStoreError::Writer("it has stopped".into());
        self.send(Message::Flush(done_tx)).map_err(|_| stopped())?;
        match done_rx.recv() {
            Ok(result) => result.map_err(AuditStoreError::Writer),
            Err(_) => Err(stopped()),
        }
    }

    fn send(&self, message: Message) -> Result<(), ()> {
        // Clone the sender out of the lock so a full queue blocks only this caller.
        let sender = self.queue.lock().map_err(|_| ())?.clone().ok_or(())?;
        sender.send(message).map_err(|_| ())
    }
}

impl AuditSink for SqliteAuditSink {
    fn record(&self, event: AuditEvent) {
        let action = event.action();
        if self.send(Message::Event(event, self.clock.now())).is_err() {
            tracing::error!(target: "flowstudio::audit", action, "audit writer has stopped; event not recorded");
        }
    }
}

impl Drop for SqliteAuditSink {
    fn drop(&mut self) {
        let _ = self.flush();
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        if let Some(writer) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = writer.join();
        }
    }
}

fn write_loop(mut store: AuditStore, rx: Receiver<Message>) {
    let mut failure: Option<String> = None;
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Event(event, time) => batch.push((event, time)),
                Message::Flush(done) => flushes.push(done),
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            if let Err(e) = write_with_retry(&mut store, &batch) {
                tracing::error!(target: "flowstudio::audit", events = batch.len(), "audit events could not be written: {e}");
                failure = Some(format!("{} audit events could not be written: {e}", batch.len()));
            }
        }
        for done in flushes {
            let _ = done.send(failure.take().map_or(Ok(()), Err));
        }
    }
}

fn write_with_retry(store: &mut AuditStore, batch: &[(AuditEvent, DateTime<Utc>)]) -> Result<(), AuditStoreError> {
    let mut attempt = 1;
    loop {
        match store.append(batch) {
            Ok(()) => return Ok(()),
            Err(e) if attempt >= ATTEMPTS => return Err(e),
            Err(e) => {
                tracing::warn!(target: "flowstudio::audit", attempt, "audit write failed, retrying: {e}");
                std::thread::sleep(Duration::from_millis(50 << attempt));
                attempt += 1;
            }
        }
    }
}
