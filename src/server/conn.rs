//! One client connection: pgwire's message loop (`pgwire::tokio::process_socket`, reproduced from its
//! public parts) over a socket whose writes are coalesced.
//!
//! pgwire flushes the socket after many single messages (BindComplete, CommandComplete, ReadyForQuery,
//! …): with TCP_NODELAY each flush is its own `send` and can wake the client. Here output is
//! buffered and written when the server needs more input than it has already received (before every
//! read of the socket), when the buffer grows large, and on shutdown. That is when PostgreSQL writes
//! too: nothing the client may wait for stays buffered while the server waits for the client.

use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::{ClientInfo, PgWireConnectionState};
use pgwire::messages::PgWireFrontendMessage;
use pgwire::tokio::server::{negotiate_tls, process_error, process_message};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts};

/// pgwire's limit for the startup and authentication phase.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

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

/// Serve one TCP connection: optional TLS negotiation, startup, then messages until the client leaves.
pub async fn process_socket<A, Q, C, X>(tcp: TcpStream, tls: Option<pgwire::tokio::TlsAcceptor>, h: Handlers<A, Q, C, X>) -> io::Result<()>
where
    A: StartupHandler,
    Q: SimpleQueryHandler + ExtendedQueryHandler,
    C: CopyHandler,
    X: CancelHandler,
{
    let startup_timeout = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup_timeout);
    let negotiated = tokio::select! {
        _ = &mut startup_timeout => return Ok(()),
        s = negotiate_tls::<<Q as ExtendedQueryHandler>::Statement>(tcp, tls) => s?,
    };
    // A direct TLS handshake without a TLS configuration: nothing to talk about.
    let Some(negotiated) = negotiated else { return Ok(()) };
    let old = negotiated.into_parts();
    let mut parts = FramedParts::new(Coalesce::new(old.io), old.codec);
    parts.read_buf = old.read_buf;
    parts.write_buf = old.write_buf;
    let mut socket = Framed::from_parts(parts);

    // The loop of pgwire's `process_socket_messages!`.
    loop {
        let msg = if matches!(socket.state(), PgWireConnectionState::AwaitingStartup | PgWireConnectionState::AuthenticationInProgress) {
            tokio::select! {
                _ = &mut startup_timeout => None,
                msg = futures::StreamExt::next(&mut socket) => msg,
            }
        } else {
            futures::StreamExt::next(&mut socket).await
        };
        let Some(Ok(msg)) = msg else { break };
        // Terminate: the client is leaving and may wait for the server to close the socket.
        if matches!(msg, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let is_extended_query = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => msg.is_extended_query(),
        };
        let is_cancel_request = matches!(msg, PgWireFrontendMessage::CancelRequest(_));
        if let Err(e) =
            process_message(msg, &mut socket, h.startup.clone(), h.query.clone(), h.query.clone(), h.copy.clone(), h.cancel.clone()).await
        {
            let is_fatal = e.is_fatal();
            process_error(&mut socket, e, is_extended_query).await?;
            if is_fatal {
                break;
            }
        }
        if is_cancel_request {
            break;
        }
    }
    // Whatever is still buffered goes out before the socket closes (the client may be gone already).
    let _ = futures::SinkExt::close(&mut socket).await;
    Ok(())
}
