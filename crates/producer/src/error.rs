//! What can go wrong when enqueueing or relaying.

use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    #[error("database error while {what}: {source}")]
    Db { what: &'static str, source: DbErr },
    #[error("cannot encode the payload of a {kind} job: {source}")]
    Payload {
        kind: &'static str,
        source: serde_json::Error,
    },
    #[error("the outbox row for idempotency key of a {kind} job changed under us repeatedly")]
    Contended { kind: &'static str },
    #[error("cannot dispatch to queue {queue}: {message}")]
    Dispatch { queue: String, message: String },
}

impl ProducerError {
    pub(crate) fn db(what: &'static str) -> impl Fn(DbErr) -> ProducerError + Copy {
        move |source| ProducerError::Db { what, source }
    }
}
