//! COPY over the wire: `COPY … FROM STDIN` collects the client's CopyData until CopyDone and then
//! runs the statement with that data (`Engine::copy_from`); `COPY … TO STDOUT` runs the query and
//! streams its rows as CopyData, one message per row, as PostgreSQL does. The formats themselves are
//! in `sql::copy`.

use super::{pg_error, session, Handler};
use crate::sql::copy::{CopyOptions, Encoder};
use crate::sql::{Column, Outcome, Session, SqlError, Value};
use async_trait::async_trait;
use bytes::Bytes;
use futures::{Sink, SinkExt};
use pgwire::api::copy::CopyHandler;
use pgwire::api::results::{CopyResponse, Tag};
use pgwire::api::ClientInfo;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail, CopyOutResponse};
use pgwire::messages::response::TransactionStatus;
use pgwire::messages::PgWireBackendMessage;
use sqlparser::ast::Statement;
use std::fmt::Debug;

/// A `COPY … FROM STDIN` waiting for its data.
pub struct PendingCopy {
    pub stmt: Statement,
    pub sql: String,
    pub data: Vec<u8>,
}

/// The CopyData messages of a `COPY … TO STDOUT` result: one per row; the header line (HEADER) rides
/// in the first message, so the number of messages is the number of rows (pgwire's `COPY n` counts
/// messages). A header over no rows is one message of its own.
pub fn copy_out_messages(stmt: &Statement, columns: &[Column], rows: &[Vec<Value>]) -> Result<Vec<CopyData>, SqlError> {
    let opts = CopyOptions::from_statement(stmt)?;
    let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    let types: Vec<_> = columns.iter().map(|c| c.ty).collect();
    let encoder = Encoder::new(opts, &names)?;
    let mut header = encoder.header(&names);
    let mut out = Vec::with_capacity(rows.len().max(1));
    for row in rows {
        let mut buf = header.take().unwrap_or_default();
        encoder.row(&mut buf, row, &types);
        out.push(CopyData::new(Bytes::from(buf)));
    }
    if let Some(h) = header {
        out.push(CopyData::new(Bytes::from(h)));
    }
    Ok(out)
}

/// Send a whole COPY TO STDOUT exchange (simple query protocol): CopyOutResponse, the data, CopyDone
/// and `COPY n` with the row count (also when a header is the only line).
pub async fn send_copy_out<C>(client: &mut C, ncols: usize, messages: Vec<CopyData>, rows: usize) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    client.feed(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(0, ncols as i16, vec![0; ncols]))).await?;
    for m in messages {
        client.feed(PgWireBackendMessage::CopyData(m)).await?;
    }
    client.feed(PgWireBackendMessage::CopyDone(CopyDone::new())).await?;
    client.feed(PgWireBackendMessage::CommandComplete(Tag::new("COPY").with_rows(rows).into())).await?;
    Ok(())
}

/// The CopyOut response for pgwire to send (extended protocol, or after other statements of a
/// simple query).
pub fn copy_out_response(ncols: usize, messages: Vec<CopyData>) -> CopyResponse {
    CopyResponse::new(0, ncols, futures::stream::iter(messages.into_iter().map(Ok)))
}

/// What ReadyForQuery must say after a COPY FROM ended.
fn status(s: &Session) -> TransactionStatus {
    if s.in_failed_transaction() {
        TransactionStatus::Error
    } else if s.in_transaction() {
        TransactionStatus::Transaction
    } else {
        TransactionStatus::Idle
    }
}

#[async_trait]
impl CopyHandler for Handler {
    async fn on_copy_data<C>(&self, client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let cell = session(client);
        if let Some(p) = cell.copy.lock().expect("copy lock is never poisoned").as_mut() {
            p.data.extend_from_slice(&copy_data.data);
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let cell = session(client);
        let pending = cell.copy.lock().expect("copy lock is never poisoned").take();
        let Some(PendingCopy { stmt, sql, data }) = pending else {
            return Err(pg_error(SqlError::new("08P01", "unexpected CopyDone: no COPY FROM STDIN in progress")));
        };
        let mut s = cell.session.lock().await;
        let result = self.engine.copy_from(&mut s, &stmt, &sql, data).await;
        if result.is_err() {
            self.engine.fail_statement(&mut s);
        }
        client.set_transaction_status(status(&s));
        drop(s);
        match result.map_err(pg_error)? {
            Outcome::Command(tag) => {
                client.send(PgWireBackendMessage::CommandComplete(Tag::new(&tag).into())).await?;
                Ok(())
            }
            other => Err(pg_error(SqlError::new("XX000", format!("COPY FROM produced {other:?}")))),
        }
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let cell = session(client);
        cell.copy.lock().expect("copy lock is never poisoned").take();
        let mut s = cell.session.lock().await;
        self.engine.fail_statement(&mut s);
        client.set_transaction_status(status(&s));
        PgWireError::UserError(Box::new(ErrorInfo::new(
            "ERROR".into(),
            "57014".into(),
            format!("COPY from stdin failed: {}", fail.message),
        )))
    }
}
