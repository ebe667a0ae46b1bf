//! One client connection: pgwire's message loop (`pgwire::tokio::process_socket`, reproduced from its
//! public parts) over a socket whose writes are coalesced.
//!
//! pgwire flushes the socket after many single messages (BindComplete, CommandComplete, ReadyForQuery,
//! …): with TCP_NODELAY each flush is its own `send` and can wake the client. Here output is
//! buffered and written when the server needs more input than it has already received (before every
//! read of the socket), when the buffer grows large, and on shutdown. That is when PostgreSQL writes
//! too: nothing the client may wait for stays buffered while the server waits for the client.

use bytes::Buf;
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{negotiate_tls, process_error, process_message, PgWireMessageServerCodec};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, Framed, FramedParts};

/// pgwire's limit for the startup and authentication phase.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the server waits for slow or stalled clients (`vouchdb serve --help`, docs/SQL.md "Limits").
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A session with an open transaction whose client sends nothing for this long is terminated
    /// (FATAL 25P03), so its row locks are released; `idle_in_transaction_session_timeout` overrides
    /// it per session. Zero: never.
    pub idle_in_transaction: Duration,
    /// A client that sent part of a message and nothing more for this long is disconnected (FATAL
    /// 08P01). Zero: never.
    pub message: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { idle_in_transaction: Duration::from_secs(300), message: Duration::from_secs(60) }
    }
}

/// Buffered output beyond this is written before more is accepted.
const HIGH_WATER: usize = 64 * 1024;

/// A stream whose `flush` is deferred: written bytes are kept until the next read, until more than
/// `HIGH_WATER` bytes wait, or until shutdown.
pub struct Coalesce<T> {
    io: T,
    out: Vec<u8>,
    /// How much of `out` the inner stream has taken.
    written: usize,
    /// The inner stream took bytes since its last completed flush (TLS keeps records back until then).
    unflushed: bool,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Coalesce<T> {
    pub fn new(io: T) -> Self {
        Coalesce { io, out: Vec::with_capacity(8 * 1024), written: 0, unflushed: false }
    }

    /// Write out everything buffered and flush the inner stream.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
            self.unflushed = true;
        }
        if !self.out.is_empty() {
            super::threads::answered();
        }
        self.out.clear();
        self.written = 0;
        if self.out.capacity() > 4 * HIGH_WATER {
            self.out.shrink_to(8 * 1024);
        }
        if self.unflushed {
            ready!(Pin::new(&mut self.io).poll_flush(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Coalesce<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // The server needs more input: whatever it answered so far must reach the client first.
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Coalesce<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.out.len() - this.written >= HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        this.out.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Deferred to the next read (see the type's documentation).
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// The handlers of a connection.
pub struct Handlers<A, Q, C, X> {
    pub startup: Arc<A>,
    pub query: Arc<Q>,
    pub copy: Arc<C>,
    pub cancel: Arc<X>,
}

/// What the next frame from the client is.
enum Incoming {
    Message(PgWireFrontendMessage),
    /// A message refused from its raw bytes (invalid UTF-8, a Bind with the wrong number of
    /// parameters): it was consumed; the error is reported and the connection goes on.
    Refused {
        error: Box<ErrorInfo>,
        extended: bool,
    },
    /// A frame that breaks the protocol (bad length, unknown type, bad startup packet): reported, then
    /// the connection is closed.
    Fatal(Box<ErrorInfo>),
    /// The client closed the connection.
    Closed,
}

/// Largest message a client may send (PostgreSQL's PQ_LARGE_MESSAGE_LIMIT: 1 GB − 1). Checked before
/// anything is buffered for it.
const MAX_MESSAGE: usize = 0x3fff_ffff;

fn fatal(code: &str, message: impl Into<String>) -> Box<ErrorInfo> {
    Box::new(ErrorInfo::new("FATAL".into(), code.into(), message.into()))
}

fn refused(e: crate::sql::SqlError) -> Box<ErrorInfo> {
    Box::new(ErrorInfo::new("ERROR".into(), e.code.into(), e.message))
}

/// A NUL-terminated string at the front of `b`: its bytes and the rest after the NUL.
fn cstring(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = b.iter().position(|&c| c == 0)?;
    Some((&b[..n], &b[n + 1..]))
}

fn take<const N: usize>(b: &[u8]) -> Option<([u8; N], &[u8])> {
    Some((b.get(..N)?.try_into().ok()?, &b[N..]))
}

/// Check the body of a Bind: names are valid UTF-8, the parameter count is the statement's, and
/// every text-format parameter is valid UTF-8 without NUL (pgwire hands the bytes on, but decodes
/// names lossily). `params_of` gives a prepared statement's parameter count. Malformed bodies are
/// left to pgwire's decoder.
fn check_bind(body: &[u8], params_of: impl Fn(&str) -> Option<usize>) -> Result<(), Box<ErrorInfo>> {
    let Some((portal, rest)) = cstring(body) else { return Ok(()) };
    let Some((stmt, rest)) = cstring(rest) else { return Ok(()) };
    super::check_utf8(portal).map_err(refused)?;
    let stmt = super::check_utf8(stmt).map_err(refused)?;
    let Some((n, mut rest)) = take::<2>(rest) else { return Ok(()) };
    let mut formats = Vec::new();
    for _ in 0..u16::from_be_bytes(n) {
        let Some((f, r)) = take::<2>(rest) else { return Ok(()) };
        formats.push(i16::from_be_bytes(f));
        rest = r;
    }
    let Some((n, mut rest)) = take::<2>(rest) else { return Ok(()) };
    let n = u16::from_be_bytes(n) as usize;
    if let Some(want) = params_of(stmt) {
        if want != n {
            let e = crate::sql::SqlError::new(
                "08P01",
                format!("bind message supplies {n} parameters, but prepared statement \"{stmt}\" requires {want}"),
            );
            return Err(refused(e));
        }
    }
    for i in 0..n {
        let Some((len, r)) = take::<4>(rest) else { return Ok(()) };
        let len = i32::from_be_bytes(len);
        rest = r;
        if len < 0 {
            continue;
        }
        let Some(value) = rest.get(..len as usize) else { return Ok(()) };
        rest = &rest[len as usize..];
        let format = match formats.len() {
            0 => 0,
            1 => formats[0],
            _ => formats.get(i).copied().unwrap_or(0),
        };
        if format == 0 {
            super::check_utf8(value).map_err(refused)?;
        }
    }
    Ok(())
}

/// Whether a frame's body has the layout of its type, so that pgwire's decoder (which reads fixed-width
/// fields without bounds checks) cannot run off its end. Bodies of types not listed need no layout.
fn well_formed(tag: u8, body: &[u8]) -> bool {
    // Counts are unsigned 16-bit, as PostgreSQL and pgwire read them.
    fn counted(b: &[u8], width: usize) -> Option<&[u8]> {
        let (n, rest) = take::<2>(b)?;
        rest.get(u16::from_be_bytes(n) as usize * width..)
    }
    fn bind(b: &[u8]) -> Option<()> {
        let (_, b) = cstring(b)?;
        let (_, b) = cstring(b)?;
        let b = counted(b, 2)?;
        let (n, mut b) = take::<2>(b)?;
        for _ in 0..u16::from_be_bytes(n) {
            let (len, rest) = take::<4>(b)?;
            let len = i32::from_be_bytes(len);
            b = if len >= 0 { rest.get(len as usize..)? } else { rest };
        }
        counted(b, 2).map(|_| ())
    }
    match tag {
        b'Q' | b'f' => cstring(body).is_some(),
        b'P' => cstring(body).and_then(|(_, b)| cstring(b)).and_then(|(_, b)| counted(b, 4)).is_some(),
        b'B' => bind(body).is_some(),
        b'D' | b'C' => body.split_first().and_then(|(_, b)| cstring(b)).is_some(),
        b'E' => cstring(body).is_some_and(|(_, b)| b.len() >= 4),
        _ => true,
    }
}

/// A SASLInitialResponse body: mechanism name, data length (−1: none), data.
pub fn well_formed_sasl_initial(body: &[u8]) -> bool {
    let Some((_, b)) = cstring(body) else { return false };
    let Some((n, b)) = take::<4>(b) else { return false };
    let n = i32::from_be_bytes(n);
    n == -1 || (n >= 0 && b.len() >= n as usize)
}

/// Check a complete frame (type byte, length, body) before pgwire decodes it, which would replace
/// invalid UTF-8 by U+FFFD and so change what the client sent.
pub(crate) fn check_frame(tag: u8, body: &[u8], params_of: impl Fn(&str) -> Option<usize>) -> Result<(), Box<ErrorInfo>> {
    if !well_formed(tag, body) {
        return Err(fatal("08P01", "invalid message format"));
    }
    match tag {
        b'Q' => {
            let sql = cstring(body).map_or(body, |(s, _)| s);
            super::check_utf8(sql).map_err(refused)?;
        }
        b'P' => {
            if let Some((name, rest)) = cstring(body) {
                super::check_utf8(name).map_err(refused)?;
                let sql = cstring(rest).map_or(rest, |(s, _)| s);
                super::check_utf8(sql).map_err(refused)?;
            }
        }
        b'B' => check_bind(body, params_of)?,
        _ => {}
    }
    Ok(())
}

/// The length of the frame at the front of `buf` (type byte and length word included; a startup
/// packet has no type byte) once all of it is here, None while it is incomplete, or the fatal error
/// for a length (or a startup packet's protocol version) no client may send.
pub(crate) fn frame_length(buf: &[u8], startup: bool) -> Result<Option<usize>, Box<ErrorInfo>> {
    if startup {
        let Some(head) = buf.get(..8) else { return Ok(None) };
        let len = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let (major, minor) = (u16::from_be_bytes([head[4], head[5]]), u16::from_be_bytes([head[6], head[7]]));
        if !(8..=10_000).contains(&len) {
            return Err(fatal("08P01", "invalid length of startup packet"));
        }
        // 1234.x are the cancel, SSL and GSS requests.
        if major != 3 && major != 1234 {
            let msg = format!("unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.0");
            return Err(fatal("0A000", msg));
        }
        return Ok((buf.len() >= len as usize).then_some(len as usize));
    }
    let Some(head) = buf.get(..5) else { return Ok(None) };
    let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if len < 4 || len as usize > MAX_MESSAGE {
        return Err(fatal("08P01", "invalid message length"));
    }
    let total = 1 + len as usize;
    Ok((buf.len() >= total).then_some(total))
}

/// Read the next frame. Frames are checked on their raw bytes first (lengths before anything is
/// buffered for them, text before pgwire decodes it lossily), then decoded by pgwire's codec.
async fn next_frame<T>(socket: &mut Framed<T, PgWireMessageServerCodec<super::Prepared>>, limits: &Limits) -> io::Result<Incoming>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static,
{
    loop {
        let state = socket.state();
        let buf = socket.read_buffer();
        let startup = matches!(state, PgWireConnectionState::AwaitingStartup);
        let mut whole = None;
        let total = match frame_length(buf, startup) {
            Ok(total) => total,
            Err(error) => return Ok(Incoming::Fatal(error)),
        };
        if startup {
            whole = total;
        } else if let Some(total) = total {
            let tag = buf[0];
            let store = socket.portal_store();
            let params_of = |name: &str| {
                store
                    .get_statement(if name.is_empty() { pgwire::api::DEFAULT_NAME } else { name })
                    .and_then(|e| e.value().map(|s| s.statement.shape.params.len()))
            };
            if let Err(error) = check_frame(tag, &socket.read_buffer()[5..total], params_of) {
                socket.read_buffer_mut().advance(total);
                if error.severity == "FATAL" {
                    return Ok(Incoming::Fatal(error));
                }
                return Ok(Incoming::Refused { error, extended: tag != b'Q' });
            }
            if tag == b'P' {
                // A named statement: remembered for DEALLOCATE ALL.
                let body = &socket.read_buffer()[5..total];
                let name = body.split(|b| *b == 0).next().unwrap_or_default();
                if !name.is_empty() {
                    let name = String::from_utf8_lossy(name).into_owned();
                    let cell = super::session(socket);
                    cell.prepared.lock().map_err(|_| std::io::Error::other("prepared statement list poisoned"))?.insert(name);
                }
            }
            whole = Some(total);
        }
        // pgwire's codec, on exactly one frame when its length is known (its decoders must not read
        // into the next one), else on the whole buffer.
        let decoded = match whole {
            Some(total) => {
                let mut frame = socket.read_buffer_mut().split_to(total);
                socket.codec_mut().decode(&mut frame)
            }
            None => {
                let mut buf = std::mem::take(socket.read_buffer_mut());
                let decoded = socket.codec_mut().decode(&mut buf);
                *socket.read_buffer_mut() = buf;
                decoded
            }
        };
        match decoded {
            Ok(Some(msg)) => return Ok(Incoming::Message(msg)),
            Ok(None) => {}
            Err(PgWireError::InvalidMessageType(t)) => {
                return Ok(Incoming::Fatal(fatal("08P01", format!("invalid frontend message type {t}"))));
            }
            Err(e) => {
                let mut info = Box::new(ErrorInfo::from(e));
                info.severity = "FATAL".into();
                return Ok(Incoming::Fatal(info));
            }
        }
        let mut buf = std::mem::take(socket.read_buffer_mut());
        buf.reserve(8 * 1024);
        // Part of a message is here: the rest must follow within the message timeout.
        let partial = !buf.is_empty() && !matches!(state, PgWireConnectionState::AwaitingStartup) && !limits.message.is_zero();
        let n = if partial {
            match tokio::time::timeout(limits.message, socket.get_mut().read_buf(&mut buf)).await {
                Ok(n) => n,
                Err(_) => {
                    let msg = format!(
                        "terminating connection: the client sent part of a message and nothing more for {} s",
                        limits.message.as_secs_f64()
                    );
                    return Ok(Incoming::Fatal(fatal("08P01", msg)));
                }
            }
        } else {
            socket.get_mut().read_buf(&mut buf).await
        };
        *socket.read_buffer_mut() = buf;
        if n? == 0 {
            return Ok(Incoming::Closed);
        }
    }
}

/// Serve one TCP connection: optional TLS negotiation, startup, then messages until the client leaves.
/// Whether the client's already-received messages `buf` hold another Execute before the next Sync,
/// or no Sync yet: then the Execute being handled is part of a pipeline, whose statements PostgreSQL
/// runs in one implicit transaction committed at Sync. A lone Execute followed by Sync (what most
/// drivers send) commits on its own at once.
pub(crate) fn execute_before_sync(buf: &[u8]) -> bool {
    let mut at = 0;
    while let Some(header) = buf.get(at..at + 5) {
        match header[0] {
            b'S' => return false,
            b'E' => return true,
            _ => {}
        }
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        at += 1 + len.max(4);
    }
    true
}

pub async fn process_socket<A, Q, C, X>(
    tcp: TcpStream,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    h: Handlers<A, Q, C, X>,
    limits: Limits,
) -> io::Result<()>
where
    A: StartupHandler,
    Q: SimpleQueryHandler + ExtendedQueryHandler<Statement = super::Prepared>,
    C: CopyHandler,
    X: CancelHandler,
{
    let startup_timeout = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup_timeout);
    let negotiated = tokio::select! {
        _ = &mut startup_timeout => return Ok(()),
        s = negotiate_tls::<super::Prepared>(tcp, tls) => match s {
            Ok(s) => s,
            Err(e) if e.get_ref().is_some_and(|inner| inner.is::<pgwire::tokio::tokio_rustls::rustls::Error>()) => {
                // A refused client certificate (another CA, expired), or another handshake failure:
                // the client got the TLS alert; the operator gets the reason.
                tracing::warn!(error = %e, "TLS handshake refused");
                return Ok(());
            }
            Err(e) => return Err(e),
        },
    };
    // A direct TLS handshake without a TLS configuration: nothing to talk about.
    let Some(negotiated) = negotiated else { return Ok(()) };
    // The client's certificate (mutual TLS), for the startup handler and the provenance records.
    if let pgwire::tokio::server::MaybeTls::Tls(tls) = negotiated.get_ref() {
        if let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
            pgwire::api::ClientInfo::session_extensions(&negotiated).insert(super::certs::ClientCert(cert.to_vec()));
        }
    }
    let old = negotiated.into_parts();
    let mut parts = FramedParts::new(Coalesce::new(old.io), old.codec);
    parts.read_buf = old.read_buf;
    parts.write_buf = old.write_buf;
    let mut socket = Framed::from_parts(parts);

    // The loop of pgwire's `process_socket_messages!`, reading through `next_frame`.
    loop {
        let incoming = if matches!(socket.state(), PgWireConnectionState::AwaitingStartup | PgWireConnectionState::AuthenticationInProgress)
        {
            tokio::select! {
                _ = &mut startup_timeout => Incoming::Closed,
                frame = next_frame(&mut socket, &limits) => frame?,
            }
        } else {
            // Waiting for the client with a transaction open: bounded, so a stalled client does not
            // hold its row locks forever.
            let idle = match socket.read_buffer().is_empty() {
                true => {
                    super::session(&socket).session.try_lock().ok().and_then(|s| s.idle_in_transaction_timeout(limits.idle_in_transaction))
                }
                false => None,
            };
            match idle {
                Some(idle) => tokio::select! {
                    _ = tokio::time::sleep(idle) => {
                        tracing::info!(peer = %socket.socket_addr(), "terminating a session idle in a transaction");
                        Incoming::Fatal(fatal("25P03", "terminating connection due to idle-in-transaction timeout"))
                    }
                    frame = next_frame(&mut socket, &limits) => frame?,
                },
                None => next_frame(&mut socket, &limits).await?,
            }
        };
        let msg = match incoming {
            Incoming::Message(msg) => msg,
            Incoming::Closed => break,
            Incoming::Fatal(info) => {
                tracing::debug!(code = %info.code, message = %info.message, "closing a connection that broke the protocol");
                let _ = futures::SinkExt::send(&mut socket, PgWireBackendMessage::ErrorResponse((*info).into())).await;
                break;
            }
            Incoming::Refused { error, extended } => {
                // After an extended-query error, messages up to Sync are discarded without a word.
                if !matches!(socket.state(), PgWireConnectionState::AwaitingSync) {
                    process_error(&mut socket, PgWireError::UserError(error), extended).await?;
                }
                continue;
            }
        };
        // Terminate: the client is leaving and may wait for the server to close the socket.
        if matches!(msg, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let is_extended_query = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => msg.is_extended_query(),
        };
        let is_cancel_request = matches!(msg, PgWireFrontendMessage::CancelRequest(_));
        if matches!(msg, PgWireFrontendMessage::Execute(_)) && execute_before_sync(socket.read_buffer()) {
            super::session(&socket).pipelined.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if let Err(e) =
            process_message(msg, &mut socket, h.startup.clone(), h.query.clone(), h.query.clone(), h.copy.clone(), h.cancel.clone()).await
        {
            if e.is_fatal() {
                // A FATAL error ends the session: PostgreSQL sends it and closes, with no ReadyForQuery.
                let user = socket.metadata().get(pgwire::api::METADATA_USER).cloned().unwrap_or_default();
                let info: pgwire::error::ErrorInfo = match e {
                    // pgwire names the user of the SCRAM message, which clients leave empty.
                    PgWireError::InvalidPassword(_) => pgwire::error::ErrorInfo::new(
                        "FATAL".into(),
                        "28P01".into(),
                        format!("password authentication failed for user \"{user}\""),
                    ),
                    e => e.into(),
                };
                let _ = futures::SinkExt::send(&mut socket, PgWireBackendMessage::ErrorResponse(info.into())).await;
                break;
            }
            process_error(&mut socket, e, is_extended_query).await?;
        }
        if is_cancel_request {
            break;
        }
    }
    // Whatever is still buffered goes out before the socket closes (the client may be gone already).
    let _ = futures::SinkExt::close(&mut socket).await;
    Ok(())
}
