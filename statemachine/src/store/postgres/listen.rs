//! Waking idle workers in every process: a commit that arms a timer or writes an outbox
//! message sends `NOTIFY` on the store's channel (delivered when it commits); a store
//! whose worker listens ([`TimerStore::on_armed`](crate::store::TimerStore::on_armed))
//! keeps one connection in `LISTEN` and passes each notification to its listeners.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls, Transaction};

use super::pool::Statements;
use super::{PostgresStore, io};
use crate::store::{ArmedSignal, StoreError};

const NOTIFY: &str = "SELECT pg_notify($1, '')";

/// The channel of the store's tables: one per schema, so that stores in other schemas
/// of the database do not wake each other.
pub(super) fn channel(schema: Option<&str>) -> String {
    match schema {
        None => "statemachine_armed".to_owned(),
        Some(schema) => {
            let mut hasher = fnv::FnvHasher::default();
            std::hash::Hasher::write(&mut hasher, schema.as_bytes());
            format!(
                "statemachine_armed_{:016x}",
                std::hash::Hasher::finish(&hasher)
            )
        }
    }
}

/// Sends the notification inside the caller's transaction: listeners hear it only if it
/// commits. PostgreSQL folds identical notifications of one transaction into one.
pub(super) async fn notify(
    tx: &Transaction<'_>,
    statements: &mut Statements,
    channel: Option<&str>,
) -> Result<(), StoreError> {
    let Some(channel) = channel else {
        return Ok(());
    };
    let notify = statements.get(tx, NOTIFY).await.map_err(io)?;
    tx.execute(&notify, &[&channel]).await.map_err(io)?;
    Ok(())
}

impl PostgresStore {
    /// The channel writes notify on, unless notifying is off.
    pub(super) fn notify_channel(&self) -> Option<&str> {
        self.notify.then_some(self.channel.as_str())
    }

    /// The channel this store's commits `NOTIFY` on when they arm a timer or write an
    /// outbox message (unless [`PostgresOptions::notify`](super::PostgresOptions::notify)
    /// is off), and its workers `LISTEN` on: one per schema.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Starts the listening connection, once; it reconnects by itself (waking every
    /// listener after a gap, in which notifications may have been missed).
    pub(super) fn listen(&self) {
        if self
            .listening
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        let config = self.pool.config().clone();
        let channel = self.channel.clone();
        let armed = Arc::clone(&self.armed);
        self.runtime().spawn(async move {
            let mut pause = Duration::from_millis(100);
            loop {
                match listen_once(&config, &channel, &armed).await {
                    Ok(()) => pause = Duration::from_millis(100),
                    Err(error) => {
                        tracing::warn!(target: "statemachine::store", %error, ?pause, "cannot LISTEN for armed timers; trying again");
                        pause = (pause * 2).min(Duration::from_secs(30));
                    }
                }
                // Whatever was armed while nobody listened: look now.
                armed.armed(true);
                tokio::time::sleep(pause).await;
            }
        });
    }
}

/// One listening connection, until it breaks.
async fn listen_once(
    config: &tokio_postgres::Config,
    channel: &str,
    armed: &ArmedSignal,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel::<()>();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    if sender.send(()).is_err() {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    });
    client
        .batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "\"\"")))
        .await?;
    armed.armed(true);
    while received.recv().await.is_some() {
        // Several notifications at once wake the listeners once.
        while received.try_recv().is_ok() {}
        armed.armed(true);
    }
    drop(client);
    match driver.await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}
