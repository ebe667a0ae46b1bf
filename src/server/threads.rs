//! Connection threads: one single-threaded tokio runtime per CPU the process may run on, each pinned
//! to its CPU. A new connection goes to the thread of the CPU its packets arrive on (Linux's
//! `SO_INCOMING_CPU`), unless that thread already serves more connections than the least busy one
//! (by more than a quarter of that one's, so two connections always get two threads), which then takes it.
//!
//! Measured against tokio's work-stealing runtime on the standard 2-core machine (pgbench, 16 clients,
//! primary-key SELECT): the work-stealing runtime spent ~14 µs of server CPU per transaction, most of
//! the difference in cross-thread wakeups (futex) and task migration; one runtime per CPU spends ~9 µs.
//! Pinning and the choice by incoming CPU keep a connection's wakeups on one CPU (without them, the same
//! threads measured anywhere from 0.85 to 1.3 times PostgreSQL's throughput from run to run).
//!
//! The price: a connection stays on its thread, so a long statement delays the other connections of
//! that thread (statements already ran on the async threads before; now nothing steals the waiting
//! connections away).
//!
//! After a connection sends an answer, its thread keeps polling its sockets for a short while (`spin`,
//! default 50 µs) before it sleeps, yielding the CPU to any other runnable thread at each turn. A
//! client that sends its next request within that time finds the thread awake: on a virtual machine
//! whose idle CPUs halt, waking a sleeping thread costs tens of microseconds, as much as the whole
//! request. Measured on the 2-core machine, pgbench 1 client: 13k -> 22k tps; 16 clients: no loss.
//! The thread does not poll while one of its connections waits for a commit
//! (`ledger::appends_waiting_here`): that answer comes after an fsync, and meanwhile the CPU belongs
//! to the committer and the clients. Measured with `benches/ab.sh 3 10 16 insert.sql` (three rounds):
//! server CPU 91 / 130 / 108 µs per INSERT against 100 / 132 / 117 when it polled, tps 12.7k / 8.2k /
//! 10.9k against 12.0k / 8.0k / 10.3k; PK SELECT unchanged (no commits).

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

pub struct ConnThreads {
    threads: Vec<ConnThread>,
}

struct ConnThread {
    /// The CPU the thread is pinned to (None when pinning is unavailable).
    cpu: Option<usize>,
    handle: tokio::runtime::Handle,
    /// Connections running on the thread.
    conns: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    join: Option<std::thread::JoinHandle<()>>,
}

/// Decrements a thread's connection count when its connection ends (or is dropped unstarted).
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ConnThreads {
    /// One thread per CPU in the process's affinity mask (or per available core when it is unknown),
    /// each polling for `spin` after an answer before it sleeps.
    pub fn start(spin: Duration) -> io::Result<ConnThreads> {
        let cpus = affinity::allowed_cpus();
        let n = if cpus.is_empty() { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) } else { cpus.len() };
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let cpu = cpus.get(i).copied();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let (tx, rx) = std::sync::mpsc::channel();
            let join = std::thread::Builder::new().name(format!("vouchdb-conn-{i}")).spawn(move || {
                let pinned = cpu.filter(|&c| affinity::pin(c));
                match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => {
                        let _ = tx.send(Ok((rt.handle().clone(), pinned)));
                        rt.block_on(async {
                            tokio::select! {
                                _ = stopped => {}
                                _ = spinner(spin) => {}
                            }
                        });
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })?;
            let (handle, cpu) = rx.recv().map_err(|_| io::Error::other("connection thread did not start"))??;
            threads.push(ConnThread { cpu, handle, conns: Arc::new(AtomicUsize::new(0)), stop: Some(stop), join: Some(join) });
        }
        Ok(ConnThreads { threads })
    }

    /// The thread for a connection whose packets arrive on `incoming`.
    fn pick(&self, incoming: Option<usize>) -> usize {
        let loads: Vec<usize> = self.threads.iter().map(|t| t.conns.load(Ordering::Relaxed)).collect();
        let (least, min) = loads.iter().copied().enumerate().min_by_key(|&(_, l)| l).unwrap_or((0, 0));
        match incoming.and_then(|cpu| self.threads.iter().position(|t| t.cpu == Some(cpu))) {
            // Balanced first: with few connections, each busy one (an auditor's readers) must get a
            // CPU of its own; with many, the incoming CPU wins within a quarter of the least load.
            Some(i) if loads[i] <= min + min / 4 => i,
            _ => least,
        }
    }

    /// Run `serve(sock)` on the thread picked for the connection, in `set`.
    pub fn spawn<F, Fut>(&self, set: &mut JoinSet<()>, sock: TcpStream, serve: F) -> io::Result<()>
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let t = &self.threads[self.pick(affinity::incoming_cpu(&sock))];
        let sock = sock.into_std()?;
        t.conns.fetch_add(1, Ordering::Relaxed);
        let counted = Counted(t.conns.clone());
        set.spawn_on(
            async move {
                let _counted = counted;
                // Register the socket with the reactor of the thread it now belongs to.
                match TcpStream::from_std(sock) {
                    Ok(sock) => serve(sock).await,
                    Err(e) => tracing::warn!(error = %e, "could not move a connection to its thread"),
                }
            },
            &t.handle,
        );
        Ok(())
    }
}

thread_local! {
    /// When a connection of this thread last sent an answer.
    static ANSWERED: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Wakes the thread's spinner.
    static SPIN: Rc<tokio::sync::Notify> = Rc::new(tokio::sync::Notify::new());
}

/// A connection sent an answer: its thread polls for the next request a while before it sleeps.
pub fn answered() {
    ANSWERED.with(|a| a.set(Some(Instant::now())));
    SPIN.with(|s| s.notify_one());
}

/// Keep the thread polling for `spin` after each answer. While this task is ready, the runtime polls
/// its sockets without blocking (a yielded task runs again after the I/O driver was polled);
/// `std::thread::yield_now` lets any other runnable thread on this CPU (a committer, a client) go first.
async fn spinner(spin: Duration) {
    if spin.is_zero() {
        return std::future::pending().await;
    }
    let wake = SPIN.with(Rc::clone);
    loop {
        wake.notified().await;
        // Not while one of this thread's connections waits for a commit: its answer comes after an
        // fsync, and the CPU is the committer's and the clients' meanwhile.
        while ANSWERED.with(Cell::get).is_some_and(|t| t.elapsed() < spin) && crate::ledger::appends_waiting_here() == 0 {
            std::thread::yield_now();
            tokio::task::yield_now().await;
        }
    }
}

impl Drop for ConnThreads {
    fn drop(&mut self) {
        for t in &mut self.threads {
            t.stop.take();
        }
        for t in &mut self.threads {
            if let Some(j) = t.join.take() {
                let _ = j.join();
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod affinity {
    /// The CPUs this process may run on.
    pub fn allowed_cpus() -> Vec<usize> {
        // SAFETY: `set` is a plain bit set that sched_getaffinity fills; CPU_ISSET only reads it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                return Vec::new();
            }
            (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
        }
    }

    /// Pin the calling thread to `cpu`; false if that failed.
    pub fn pin(cpu: usize) -> bool {
        // SAFETY: `set` is a plain bit set built with CPU_ZERO/CPU_SET and only read by the call.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_ZERO(&mut set);
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
        }
    }

    /// The CPU the connection's packets are received on.
    pub fn incoming_cpu(sock: &tokio::net::TcpStream) -> Option<usize> {
        socket2::SockRef::from(sock).cpu_affinity().ok()
    }
}

#[cfg(not(target_os = "linux"))]
mod affinity {
    pub fn allowed_cpus() -> Vec<usize> {
        Vec::new()
    }
    pub fn pin(_cpu: usize) -> bool {
        false
    }
    pub fn incoming_cpu(_sock: &tokio::net::TcpStream) -> Option<usize> {
        None
    }
}
