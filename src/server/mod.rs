//! The PostgreSQL wire protocol edge (pgwire): authentication, simple and extended query, cancel.
//! No SQL logic lives here: messages become calls on `sql::Engine` with a per-connection `Session`,
//! and outcomes become wire responses.

pub mod certs;
pub(crate) mod conn;
pub use conn::Limits;
mod copy;
mod prepare;
mod threads;
pub(crate) mod types;

use crate::sql::engine::PlanCache;
use crate::sql::{self, DataType, Engine, Outcome, Session, Shape, SqlError, Value};
use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::cleartext::CleartextPasswordAuth;
use pgwire::api::auth::mechanism::AuthMechanismFactory;
use pgwire::api::auth::sasl::scram::{ScramAuth, ScramSecret};
use pgwire::api::auth::sasl::SaslMechanisms;
use pgwire::api::auth::{AuthDriver, AuthOutcome, AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler};
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{DataRowEncoder, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, ConnectionManager, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use sqlparser::ast::Statement;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The PostgreSQL version vouchdb reports (drivers gate features on it).
pub const PG_VERSION: &str = "15.0";
pub const PG_VERSION_NUM: &str = "150000";

fn error_info(e: SqlError) -> ErrorInfo {
    let mut info = ErrorInfo::new("ERROR".into(), e.code.into(), e.message);
    info.where_context = e.context;
    if let Some(f) = e.fields {
        info.detail = f.detail;
        info.schema = f.schema;
        info.table = f.table;
        info.constraint = f.constraint;
    }
    info
}

/// `b` as text, or PostgreSQL's 22021 naming the first bad byte sequence (a NUL byte is one: text
/// cannot hold it).
pub(crate) fn check_utf8(b: &[u8]) -> Result<&str, SqlError> {
    let nul = b.iter().position(|&c| c == 0);
    let (text, invalid) = match std::str::from_utf8(b) {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(e.valid_up_to())),
    };
    let at = match (nul, invalid) {
        (None, None) => return Ok(text.unwrap_or_default()),
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or_default(),
    };
    let lead = b[at];
    let len = match lead {
        _ if lead & 0x80 == 0 => 1,
        _ if lead & 0xe0 == 0xc0 => 2,
        _ if lead & 0xf0 == 0xe0 => 3,
        _ if lead & 0xf8 == 0xf0 => 4,
        _ => 1,
    };
    let shown: Vec<String> = b[at..].iter().take(len).map(|c| format!("0x{c:02x}")).collect();
    Err(SqlError::new("22021", format!("invalid byte sequence for encoding \"UTF8\": {}", shown.join(" "))))
}

fn pg_error(e: SqlError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e)))
}

/// `pg_error`, with PostgreSQL's cursor position in `sql` (1-based, in characters) for the errors that
/// have one: a syntax error (and PostgreSQL's wording for it), an unknown relation or column.
fn pg_error_at(e: SqlError, sql: &str) -> PgWireError {
    PgWireError::UserError(Box::new(error_info_at(e, sql)))
}

fn error_info_at(mut e: SqlError, sql: &str) -> ErrorInfo {
    let mut position = None;
    if e.code == "42601" {
        // sqlparser: "…, found: TOKEN at Line: L, Column: C".
        let message = e.message.clone();
        if let Some((head, at)) = message.rsplit_once(" at Line: ") {
            if let Some((line, col)) = at.split_once(", Column: ") {
                if let (Ok(line), Ok(col)) = (line.trim().parse::<usize>(), col.trim().parse::<usize>()) {
                    let before: usize = sql.split_inclusive('\n').take(line.saturating_sub(1)).map(|l| l.chars().count()).sum();
                    position = Some(before + col);
                }
                if let Some((_, token)) = head.rsplit_once("found: ") {
                    e.message =
                        if token == "EOF" { "syntax error at end of input".into() } else { format!("syntax error at or near \"{token}\"") };
                    if token == "EOF" {
                        position = Some(sql.trim_end().chars().count() + 1);
                    }
                }
            }
        }
    } else if matches!(e.code, "42P01" | "42703") {
        // The quoted name of `relation "x" does not exist` / `column "x" does not exist`.
        let name = e.message.split('"').nth(1).map(str::to_lowercase);
        position = name.filter(|n| !n.is_empty()).and_then(|n| find_word(sql, &n));
    }
    let mut info = error_info(e);
    info.position = position.map(|p| p.to_string());
    info
}

/// The 1-based character position of the first occurrence of identifier `word` in `sql` (case-
/// insensitive, as a whole word, outside string literals).
fn find_word(sql: &str, word: &str) -> Option<usize> {
    let lower = sql.to_lowercase();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut in_string = false;
    for (i, c) in lower.char_indices() {
        if c == '\'' {
            in_string = !in_string;
        }
        if in_string || !lower[i..].starts_with(word) {
            continue;
        }
        let before = lower[..i].chars().next_back().is_none_or(|b| !ident(b));
        let after = lower[i + word.len()..].chars().next().is_none_or(|a| !ident(a));
        if before && after {
            return Some(lower[..i].chars().count() + 1);
        }
    }
    None
}

struct SessionCell {
    session: tokio::sync::Mutex<Session>,
    /// The COPY FROM STDIN receiving data, between CopyInResponse and CopyDone/CopyFail.
    copy: std::sync::Mutex<Option<copy::PendingCopy>>,
    /// Names of the statements the client prepared with Parse (pgwire's store cannot list them), for
    /// `DEALLOCATE ALL`.
    prepared: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// Statements prepared with SQL `PREPARE`, by name (`prepare.rs`).
    sql_prepared: std::sync::Mutex<std::collections::HashMap<String, Prepared>>,
    /// Set by the message loop before an Execute when another Execute may follow before the next
    /// Sync: the statement then runs in the pipeline's implicit transaction, committed at Sync.
    pipelined: std::sync::atomic::AtomicBool,
}

fn session<C: ClientInfo>(client: &C) -> Arc<SessionCell> {
    if let Some(cell) = client.session_extensions().get::<SessionCell>() {
        return cell;
    }
    // (Read before get_or_insert_with, which holds the extensions' lock while it builds the cell.)
    let method = client.session_extensions().get::<AuthUsed>().map_or("scram-sha-256", |m| m.0);
    let client_cert = client.session_extensions().get::<certs::ClientCert>().map(|c| c.fingerprint());
    client.session_extensions().get_or_insert_with(|| {
        let user = client.metadata().get(pgwire::api::METADATA_USER).map(String::as_str).unwrap_or_default();
        let auth = sql::provenance::Auth { method: method.into(), tls: client.is_secure(), client_cert };
        SessionCell {
            session: tokio::sync::Mutex::new(Session::connected(user, auth)),
            copy: std::sync::Mutex::new(None),
            prepared: Default::default(),
            sql_prepared: Default::default(),
            pipelined: Default::default(),
        }
    })
}

/// `DEALLOCATE [PREPARE] {name | ALL}`: forget prepared statements, as PostgreSQL does for the
/// statements of both PREPARE and the protocol's Parse (psycopg sends `DEALLOCATE ALL` after DDL).
fn deallocate<S: PortalStore>(store: &S, cell: &SessionCell, name: &sqlparser::ast::Ident) -> Result<Response, SqlError> {
    let mut names = cell.prepared.lock().map_err(|_| SqlError::new("XX000", "prepared statement list poisoned"))?;
    let mut sql_prepared = cell.sql_prepared.lock().map_err(|_| SqlError::new("XX000", "prepared statement map poisoned"))?;
    if name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all") {
        for n in std::mem::take(&mut *names) {
            store.rm_statement(&n);
        }
        sql_prepared.clear();
        return Ok(Response::Execution(Tag::new("DEALLOCATE ALL")));
    }
    let n = prepare::statement_name(name);
    if sql_prepared.remove(&n).is_some() {
        return Ok(Response::Execution(Tag::new("DEALLOCATE")));
    }
    if !names.remove(&n) || store.get_statement(&n).is_none() {
        return Err(SqlError::new("26000", format!("prepared statement \"{n}\" does not exist")));
    }
    store.rm_statement(&n);
    Ok(Response::Execution(Tag::new("DEALLOCATE")))
}

/// Start a `COPY … FROM STDIN`: check it, then park it until its data has arrived.
async fn start_copy_in(engine: &Engine, cell: &SessionCell, s: &mut Session, stmt: &Statement, sql: &str) -> Result<Response, SqlError> {
    if s.in_failed_transaction() {
        return Err(SqlError::aborted_transaction());
    }
    let ncols = match engine.check_copy(stmt) {
        Ok(n) => n,
        Err(e) => {
            engine.fail_statement(s);
            return Err(e);
        }
    };
    *cell.copy.lock().expect("copy lock is never poisoned") =
        Some(copy::PendingCopy { stmt: stmt.clone(), sql: sql.to_string(), data: Vec::new() });
    Ok(Response::CopyIn(pgwire::api::results::CopyResponse::new(0, ncols, futures::stream::empty())))
}

fn is_copy_from(stmt: &Statement) -> bool {
    matches!(stmt, Statement::Copy { to: false, .. })
}

/// A prepared statement: the parsed statement (None for an empty query), its shape and its plan,
/// made at the first execution and kept while the catalog does not change.
#[derive(Debug, Clone)]
pub struct Prepared {
    stmt: Option<Arc<sqlparser::ast::Statement>>,
    sql: String,
    shape: Shape,
    plan: Arc<PlanCache>,
    schemas: Arc<Schemas>,
}

/// A prepared statement's result description for all-text and for all-binary results, made at the
/// first execution that needs it.
#[derive(Debug, Default)]
struct Schemas {
    text: std::sync::OnceLock<Arc<Vec<FieldInfo>>>,
    binary: std::sync::OnceLock<Arc<Vec<FieldInfo>>>,
}

pub struct Handler {
    engine: Arc<Engine>,
    parser: Arc<Parser>,
}

pub struct Parser {
    engine: Arc<Engine>,
}

fn field_infos(columns: &[sql::Column], format: &Format) -> Vec<FieldInfo> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            // As PostgreSQL describes a column: the table and column it reads unchanged, the type's
            // width and the column's type modifier (drivers read precision and lengths from them).
            let table = c.origin.map(|o| o.table as i32);
            let attnum = c.origin.map(|o| o.attnum);
            FieldInfo::new(c.name.clone(), table, attnum, types::pg_type(c.ty), format.format_for(i))
                .with_type_size(sql::pg_catalog::type_len(c.ty) as i16)
                .with_type_modifier(c.origin.map_or(-1, |o| o.typmod))
        })
        .collect()
}

fn rows_response(
    columns: &[sql::Column],
    rows: Vec<Vec<Value>>,
    tag: &str,
    format: &Format,
    schema: Option<Arc<Vec<FieldInfo>>>,
) -> PgWireResult<Response> {
    let schema = schema.unwrap_or_else(|| Arc::new(field_infos(columns, format)));
    let mut encoder = DataRowEncoder::new(schema.clone());
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        for (v, c) in row.iter().zip(columns) {
            encoder.encode_field(&types::Cell(v, c.ty))?;
        }
        out.push(Ok(encoder.take_row()));
    }
    let mut qr = QueryResponse::new(schema, futures::stream::iter(out));
    // pgwire appends the row count: "SELECT 3", "INSERT 0 3".
    let base = tag.rsplit_once(' ').map(|(b, n)| if n.chars().all(|c| c.is_ascii_digit()) { b } else { tag }).unwrap_or(tag);
    qr.set_command_tag(base);
    Ok(Response::Query(qr))
}

/// `schemas`: a prepared statement's result descriptions, used when the result has the columns it
/// described.
fn to_response(o: Outcome, format: &Format, prepared: Option<&Prepared>) -> PgWireResult<Response> {
    Ok(match o {
        Outcome::Rows { columns, rows, tag } => {
            let cached = prepared.filter(|p| *p.shape.columns == *columns).and_then(|p| match format {
                Format::UnifiedText => Some(p.schemas.text.get_or_init(|| Arc::new(field_infos(&columns, format))).clone()),
                Format::UnifiedBinary => Some(p.schemas.binary.get_or_init(|| Arc::new(field_infos(&columns, format))).clone()),
                Format::Individual(_) => None,
            });
            rows_response(&columns, rows, &tag, format, cached)?
        }
        Outcome::Command(tag) => Response::Execution(Tag::new(&tag)),
        Outcome::Begin => Response::TransactionStart(Tag::new("BEGIN")),
        Outcome::Commit(tag) => Response::TransactionEnd(Tag::new(&tag)),
    })
}

#[async_trait]
impl SimpleQueryHandler for Handler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let cell = session(client);
        let mut s = cell.session.lock().await;
        let stmts = match sql::parse(query) {
            Ok(v) => v,
            Err(e) => return Err(pg_error_at(e, query)),
        };
        if stmts.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut out = Vec::with_capacity(stmts.len());
        let last = stmts.len() - 1;
        // Several statements in one string are one implicit transaction, as in PostgreSQL (COPY FROM
        // STDIN, which needs the client's data first, keeps statement-at-a-time commits).
        let implicit = last > 0 && !stmts.iter().any(|(st, _)| matches!(st, Statement::Copy { .. }));
        if implicit {
            self.engine.begin_implicit(&mut s);
        }
        for (i, (stmt, text)) in stmts.into_iter().enumerate() {
            let result = match &stmt {
                Statement::Deallocate { name, .. } => deallocate(client.portal_store(), &cell, name),
                Statement::Prepare { .. } => self.prepare(&cell, &mut s, &stmt, &text).await,
                Statement::Execute { name: Some(name), parameters, .. } => {
                    self.execute_sql_prepared(&cell, &mut s, name, parameters, &[], &Format::UnifiedText).await
                }
                Statement::Copy { .. } if is_copy_from(&stmt) && i != last => {
                    Err(SqlError::unsupported("COPY FROM STDIN must be the last statement of a multi-statement query string"))
                }
                Statement::Copy { .. } if is_copy_from(&stmt) => start_copy_in(&self.engine, &cell, &mut s, &stmt, &text).await,
                Statement::Copy { .. } => match self.engine.execute(&mut s, &stmt, &text, &[]).await {
                    Ok(Outcome::Rows { columns, rows, .. }) => match copy::copy_out_messages(&stmt, &columns, &rows) {
                        // The first statement of the string: sent here, so that `COPY n` counts rows
                        // even when the header is the only line.
                        Ok(messages) if out.is_empty() => {
                            copy::send_copy_out(client, columns.len(), messages, rows.len()).await?;
                            continue;
                        }
                        Ok(messages) => Ok(Response::CopyOut(copy::copy_out_response(columns.len(), messages))),
                        Err(e) => Err(e),
                    },
                    Ok(_) => Err(SqlError::new("XX000", "COPY TO produced no rows")),
                    Err(e) => Err(e),
                },
                _ => match self.engine.execute(&mut s, &stmt, &text, &[]).await {
                    Ok(o) => Ok(to_response(o, &Format::UnifiedText, None)?),
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(r) => out.push(r),
                Err(e) => {
                    if implicit {
                        self.engine.fail_statement(&mut s);
                        self.engine.end_implicit(&mut s).await.map_err(pg_error)?;
                    }
                    if out.is_empty() {
                        return Err(pg_error_at(e, query));
                    }
                    out.push(Response::Error(Box::new(error_info_at(e, query))));
                    return Ok(out);
                }
            }
        }
        if implicit {
            if let Err(e) = self.engine.end_implicit(&mut s).await {
                out.push(Response::Error(Box::new(error_info(e))));
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(&self, client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        match self.parse_one(client, sql, types).await {
            Ok(p) => Ok(Some(p)),
            Err(e) => {
                // A statement that fails to parse aborts the transaction, as any failed statement does.
                self.engine.fail_statement(&mut *session(client).session.lock().await);
                Err(pg_error_at(e, sql))
            }
        }
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(stmt.shape.params.iter().map(|t| types::pg_type(*t)).collect())
    }

    fn get_result_schema(&self, stmt: &Prepared, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        Ok(field_infos(&stmt.shape.columns, format.unwrap_or(&Format::UnifiedText)))
    }
}

impl Parser {
    async fn parse_one<C: ClientInfo>(&self, client: &C, sql: &str, types: &[Option<Type>]) -> Result<Prepared, SqlError> {
        let mut stmts = sql::parse(sql)?;
        if stmts.len() > 1 {
            return Err(SqlError::syntax("cannot insert multiple commands into a prepared statement"));
        }
        let Some((stmt, text)) = stmts.pop() else {
            return Ok(Prepared { stmt: None, sql: String::new(), shape: Shape::default(), plan: Arc::default(), schemas: Arc::default() });
        };
        // Described under the session's transaction, which may have created the tables it names.
        let cell = session(client);
        let s = cell.session.lock().await;
        let mut prepared = self.describe_one(&s, stmt, text, types)?;
        if let Statement::Execute { name: Some(name), parameters, .. } = prepared.stmt.as_deref().expect("described above") {
            // Its rows are those of the statement it runs, its parameters those its arguments use.
            if let Ok(inner) = prepare::lookup(&cell, &prepare::execute_name(name)) {
                prepared.shape.params = prepare::argument_parameters(&inner, parameters, types);
                prepared.shape.columns = inner.shape.columns;
            }
        }
        Ok(prepared)
    }

    fn describe_one(&self, s: &Session, stmt: Statement, text: String, types: &[Option<Type>]) -> Result<Prepared, SqlError> {
        let given: Vec<Option<DataType>> = types.iter().map(|t| t.as_ref().and_then(types::data_type)).collect();
        let shape = self.engine.describe(s, &stmt, &given)?;
        Ok(Prepared { stmt: Some(Arc::new(stmt)), sql: text, shape, plan: Arc::default(), schemas: Arc::default() })
    }
}

#[async_trait]
impl ExtendedQueryHandler for Handler {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.parser.clone()
    }

    async fn do_query<C>(&self, client: &mut C, portal: &Portal<Prepared>, _max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let Some(stmt) = &prepared.stmt else { return Ok(Response::EmptyQuery) };
        let cell = session(client);
        let mut s = cell.session.lock().await;
        if cell.pipelined.load(std::sync::atomic::Ordering::Relaxed) {
            self.engine.begin_implicit(&mut s);
        }
        let mut params = Vec::with_capacity(portal.parameters.len());
        for (i, raw) in portal.parameters.iter().enumerate() {
            let ty = prepared.shape.params.get(i).copied().unwrap_or(DataType::Text);
            let v = match raw {
                None => Ok(Value::Null),
                Some(b) if portal.parameter_format.is_binary(i) => types::decode_binary(b, ty),
                Some(b) => check_utf8(b).and_then(|t| Value::parse(t, ty)),
            };
            match v {
                Ok(v) => params.push(v),
                Err(e) => {
                    self.engine.fail_statement(&mut s);
                    return Err(pg_error(e));
                }
            }
        }
        match &**stmt {
            Statement::Deallocate { name, .. } => return deallocate(client.portal_store(), &cell, name).map_err(pg_error),
            Statement::Prepare { .. } => return self.prepare(&cell, &mut s, stmt, &prepared.sql).await.map_err(pg_error),
            Statement::Execute { name: Some(name), parameters, .. } => {
                let format = &portal.result_column_format;
                return self.execute_sql_prepared(&cell, &mut s, name, parameters, &params, format).await.map_err(pg_error);
            }
            _ => {}
        }
        if is_copy_from(stmt) {
            return start_copy_in(&self.engine, &cell, &mut s, stmt, &prepared.sql).await.map_err(pg_error);
        }
        let o = self
            .engine
            .execute_prepared(&mut s, stmt, &prepared.sql, &params, Some(&prepared.plan))
            .await
            .map_err(|e| pg_error_at(e, &prepared.sql))?;
        if let (Statement::Copy { .. }, Outcome::Rows { columns, rows, .. }) = (&**stmt, &o) {
            let messages = copy::copy_out_messages(stmt, columns, rows).map_err(pg_error)?;
            return Ok(Response::CopyOut(copy::copy_out_response(columns.len(), messages)));
        }
        to_response(o, &portal.result_column_format, Some(prepared))
    }

    /// Sync ends the pipeline: its implicit transaction commits (or rolls back after an error) before
    /// ReadyForQuery, and a failed commit is reported first.
    async fn on_sync<C>(&self, client: &mut C, _message: pgwire::messages::extendedquery::Sync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        client.portal_store().rm_portal("");
        let cell = session(client);
        cell.pipelined.store(false, std::sync::atomic::Ordering::Relaxed);
        let ended = {
            let mut s = cell.session.lock().await;
            self.engine.end_implicit(&mut s).await
        };
        if let Err(e) = ended {
            client.feed(PgWireBackendMessage::ErrorResponse(error_info(e).into())).await?;
        }
        let status = client.transaction_status();
        client.send(PgWireBackendMessage::ReadyForQuery(pgwire::messages::response::ReadyForQuery::new(status))).await?;
        Ok(())
    }

    /// Describe of a statement that returns no rows (INSERT, UPDATE without RETURNING, DDL) answers
    /// NoData after its parameters, as PostgreSQL does; pgwire would send an empty RowDescription,
    /// which pgjdbc takes for a result set.
    async fn on_describe<C>(&self, client: &mut C, message: pgwire::messages::extendedquery::Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        use pgwire::messages::data::{NoData, ParameterDescription};
        if message.target_type == b'S' {
            let name = message.name.as_deref().unwrap_or("");
            if let Some(pgwire::api::store::Entry::Value(stmt)) = client.portal_store().get_statement(name) {
                let p = &stmt.statement;
                if p.stmt.is_some() && p.shape.columns.is_empty() {
                    let oids = p.shape.params.iter().map(|t| types::pg_type(*t).oid()).collect();
                    client.feed(PgWireBackendMessage::ParameterDescription(ParameterDescription::new(oids))).await?;
                    client.send(PgWireBackendMessage::NoData(NoData::new())).await?;
                    return Ok(());
                }
            }
        }
        self._on_describe(client, message).await
    }
}

/// Users and their SCRAM verifiers, from the catalog.
#[derive(Debug)]
pub struct Users {
    engine: Arc<Engine>,
}

impl Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Engine")
    }
}

#[async_trait]
impl AuthSource for Users {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        Err(PgWireError::InvalidPassword(login.user().unwrap_or_default().to_string()))
    }

    /// A cleartext password (offered over TLS only, see `Startup`): derive the salted password with the
    /// stored salt and iterations and compare the SCRAM stored key it gives, in constant time. The
    /// password itself is never stored.
    async fn verify_password(&self, login: &LoginInfo, presented: &[u8]) -> PgWireResult<Option<()>> {
        let name = login.user().unwrap_or_default();
        // PostgreSQL's words, for a wrong password and an unknown user alike.
        let refused = || {
            let message = format!("password authentication failed for user \"{name}\"");
            PgWireError::UserError(Box::new(ErrorInfo::new("FATAL".into(), "28P01".into(), message)))
        };
        let (stored_key, salt, iterations) = {
            let catalog = self.engine.catalog();
            let u = catalog.users.get(name).ok_or_else(refused)?;
            (hex::decode(&u.stored_key).map_err(|_| refused())?, hex::decode(&u.salt).map_err(|_| refused())?, u.iterations as usize)
        };
        // A password that is not UTF-8 cannot be the one the verifier was made from.
        let password = std::str::from_utf8(presented).map_err(|_| refused())?;
        let salted = pgwire::api::auth::sasl::scram::gen_salted_password(password, &salt, iterations);
        let ScramSecret::Verifier { stored_key: derived, .. } = ScramSecret::verifier_from_salted_password(salt, salted, iterations) else {
            return Err(refused());
        };
        if constant_time_eq(&derived, &stored_key) {
            Ok(None)
        } else {
            Err(refused())
        }
    }

    async fn get_scram_secret(&self, login: &LoginInfo) -> PgWireResult<(ScramSecret, Option<()>)> {
        let name = login.user().unwrap_or_default();
        let catalog = self.engine.catalog();
        let u = catalog.users.get(name).ok_or_else(|| PgWireError::InvalidPassword(name.to_string()))?;
        let bad = |_| PgWireError::InvalidPassword(name.to_string());
        Ok((
            ScramSecret::Verifier {
                salt: hex::decode(&u.salt).map_err(bad)?,
                iterations: u.iterations as usize,
                stored_key: hex::decode(&u.stored_key).map_err(bad)?,
                server_key: hex::decode(&u.server_key).map_err(bad)?,
            },
            None,
        ))
    }
}

/// Equality of two byte strings in time that depends on their lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// How clients prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMethod {
    /// SCRAM-SHA-256 on every connection.
    #[default]
    Scram,
    /// A cleartext password (AuthenticationCleartextPassword) on TLS connections, checked against the
    /// stored SCRAM verifier; plain connections still use SCRAM-SHA-256. As PostgreSQL with
    /// `hostssl all all all password` followed by `host all all all scram-sha-256` in pg_hba.conf.
    Password,
}

impl std::str::FromStr for AuthMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "scram" | "scram-sha-256" => Ok(AuthMethod::Scram),
            "password" => Ok(AuthMethod::Password),
            _ => Err(format!("unknown authentication method {s:?} (expected scram or password)")),
        }
    }
}

/// The startup handler: picks the authentication mechanism per connection. A cleartext password is
/// only ever asked for on a TLS connection.
pub struct Startup {
    driver: AuthDriver<Arc<DefaultServerParameterProvider>>,
    scram: SaslMechanisms,
    cleartext: Option<CleartextPasswordAuth<Users>>,
    /// Client certificates authenticate every connection (`--tls-client-ca`).
    certs: Option<certs::CertAuth>,
    engine: Arc<Engine>,
}

/// The authentication method of a connection, for its provenance records.
struct AuthUsed(&'static str);

/// Marks a connection whose first authentication message arrived.
struct SaslStarted;

impl Startup {
    /// Whether `client` authenticates with a cleartext password: configured, and over TLS.
    fn cleartext_for<C: ClientInfo>(&self, client: &C) -> bool {
        self.cleartext.is_some() && client.is_secure()
    }

    /// With client certificates: the connection must be TLS with a verified certificate whose
    /// identity maps to the role the client asked for, an existing role.
    fn certificate_role<C: ClientInfo>(&self, auth: &certs::CertAuth, client: &C) -> Result<(), String> {
        if !client.is_secure() {
            return Err("this server accepts TLS connections with a client certificate only (--tls-client-ca): connect with sslmode=require, sslcert and sslkey".into());
        }
        let Some(cert) = client.session_extensions().get::<certs::ClientCert>() else {
            return Err(
                "connection requires a client certificate signed by the server's client CA; none was presented (sslcert, sslkey)".into()
            );
        };
        let role = auth.role(&cert.0)?;
        let user = client.metadata().get(pgwire::api::METADATA_USER).cloned().unwrap_or_default();
        if role != user {
            return Err(format!("certificate authentication failed for user \"{user}\": the client certificate is for role \"{role}\""));
        }
        if !self.engine.catalog().users.contains_key(&user) {
            return Err(format!("certificate authentication failed: role \"{user}\" does not exist"));
        }
        Ok(())
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let outcome = match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                pgwire::api::auth::protocol_negotiation(client, startup).await?;
                pgwire::api::auth::save_startup_parameters_to_metadata(client, startup);
                if let Some(auth) = &self.certs {
                    // Mutual TLS: the verified certificate is the credential; no password is asked.
                    if let Err(msg) = self.certificate_role(auth, client) {
                        tracing::info!(peer = %client.socket_addr(), reason = %msg, "refused a connection");
                        return Err(PgWireError::UserError(Box::new(ErrorInfo::new("FATAL".into(), "28000".into(), msg))));
                    }
                    client.session_extensions().insert(AuthUsed("cert"));
                    return self.driver.complete_authentication(client, None).await;
                }
                let (mechanism, method) = match &self.cleartext {
                    Some(cleartext) if self.cleartext_for(client) => (cleartext.create(), "password"),
                    _ => (self.scram.create(), "scram-sha-256"),
                };
                client.session_extensions().insert(AuthUsed(method));
                self.driver.begin_authentication(client, mechanism).await?
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                // pgwire reads SCRAM's first message without bounds checks: check its layout here.
                let first = client.session_extensions().get::<SaslStarted>().is_none();
                if let pgwire::messages::startup::PasswordMessageFamily::Raw(body) = &message {
                    if first && !self.cleartext_for(client) && !conn::well_formed_sasl_initial(body) {
                        return Err(PgWireError::InvalidScramMessage("malformed SASLInitialResponse".into()));
                    }
                }
                client.session_extensions().insert(SaslStarted);
                self.driver.advance_authentication(client, message).await?
            }
            _ => return Ok(()),
        };
        match outcome {
            AuthOutcome::InProgress => Ok(()),
            AuthOutcome::Authenticated { final_message, .. } => self.driver.complete_authentication(client, final_message).await,
        }
    }
}

/// A TLS acceptor from PEM files: a certificate chain and its private key (PKCS#8, SEC1 or PKCS#1);
/// with `client_ca`, client certificates are verified against that CA bundle (certs.rs).
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
    client_ca: Option<&std::path::Path>,
) -> Result<pgwire::tokio::TlsAcceptor, String> {
    use pgwire::tokio::tokio_rustls::rustls;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("TLS certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("TLS certificate {}: no certificate in the file", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("TLS key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?;
    let builder = match client_ca {
        Some(ca) => builder.with_client_cert_verifier(certs::client_verifier(ca, provider)?),
        None => builder.with_no_client_auth(),
    };
    let mut config =
        builder.with_single_cert(certs, key).map_err(|e| format!("TLS certificate and key do not match or are unusable: {e}"))?;
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(pgwire::tokio::TlsAcceptor::from(Arc::new(config)))
}

/// How the server talks to clients (`vouchdb serve`'s flags).
pub struct ServeConfig {
    /// With a TLS acceptor, clients may upgrade with SSLRequest (psql's sslmode=prefer/require);
    /// without, SSLRequest is declined.
    pub tls: Option<pgwire::tokio::TlsAcceptor>,
    /// How TLS connections authenticate (plain ones always use SCRAM-SHA-256).
    pub auth: AuthMethod,
    /// Client certificates authenticate every connection (`--tls-client-ca`).
    pub client_certs: Option<certs::CertAuth>,
    pub limits: conn::Limits,
    /// After answering, a connection thread polls for the next request this long before it sleeps.
    pub spin: std::time::Duration,
}

/// Accept PostgreSQL connections on `listener` until `shutdown` resolves.
pub async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    config: ServeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let mut params = DefaultServerParameterProvider::default();
    params.server_version = PG_VERSION.to_string();
    params.date_style = "ISO, MDY".into();
    params.time_zone = "UTC".into();
    let manager = Arc::new(ConnectionManager::new());
    let users = Arc::new(Users { engine: engine.clone() });
    let startup = Arc::new(Startup {
        driver: AuthDriver::new(Arc::new(params)).with_connection_manager(manager.clone()),
        scram: SaslMechanisms::new(vec![Arc::new(ScramAuth::new(users.clone()))]),
        cleartext: (config.auth == AuthMethod::Password).then(|| CleartextPasswordAuth::new(users)),
        certs: config.client_certs,
        engine: engine.clone(),
    });
    let handler = Arc::new(Handler { engine: engine.clone(), parser: Arc::new(Parser { engine }) });
    let cancel = Arc::new(DefaultCancelHandler::new(manager));
    let copy = handler.clone();
    let threads = threads::ConnThreads::start(config.spin)?;
    let (tls, limits) = (config.tls, config.limits);
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((sock, peer)) => {
                    let _ = sock.set_nodelay(true);
                    let h = conn::Handlers { startup: startup.clone(), query: handler.clone(), copy: copy.clone(), cancel: cancel.clone() };
                    let tls = tls.clone();
                    let spawned = threads.spawn(&mut conns, sock, move |sock| async move {
                        if let Err(e) = conn::process_socket(sock, tls, h, limits).await {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    });
                    if let Err(e) = spawned {
                        tracing::warn!(%peer, error = %e, "could not start a connection");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
    // Stopping the threads joins them: off the async threads.
    let _ = tokio::task::spawn_blocking(move || drop(threads)).await;
    Ok(())
}

/// Resolve the address to listen on.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|e| format!("bad listen address {s:?}: {e}"))
}
