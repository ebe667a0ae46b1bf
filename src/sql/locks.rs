//! Row locks, as PostgreSQL applications expect them (ARCHITECTURE.md, "Concurrency").
//!
//! A writing statement locks every key it writes (a table's primary-key entry, and for a unique index
//! the indexed value) before its transaction may commit; the locks are released only once the commit
//! is durable, or when the transaction ends any other way. A statement that meets a key locked by
//! another transaction waits for it; the wait-for graph is checked on every wait, and a transaction that
//! would close a cycle fails with 40P01 at once. Locks live in memory only: a restart ends every
//! transaction, so there is nothing to recover.

use super::error::{SqlError, SqlResult};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A lockable key: a table (or unique index) id and the encoded key.
pub type LockKey = (u32, Vec<u8>);

#[derive(Default)]
struct State {
    owners: HashMap<LockKey, u64>,
    /// Which transaction each waiting transaction waits for.
    waits_for: HashMap<u64, u64>,
}

#[derive(Default)]
pub struct LockManager {
    state: Mutex<State>,
    released: tokio::sync::Notify,
}

/// The locks one transaction holds; dropping it releases them all.
pub struct LockSet {
    manager: Arc<LockManager>,
    pub txn_id: u64,
    held: HashSet<LockKey>,
}

impl LockSet {
    pub fn new(manager: Arc<LockManager>, txn_id: u64) -> LockSet {
        LockSet { manager, txn_id, held: HashSet::new() }
    }

    pub fn holds(&self, key: &LockKey) -> bool {
        self.held.contains(key)
    }

    /// Acquire every key, waiting for other holders until `deadline`. Returns whether it had to wait
    /// (the caller then re-reads what it locked). Keys acquired before an error stay held, as in
    /// PostgreSQL; they go when the transaction ends.
    pub async fn acquire(&mut self, keys: &[LockKey], deadline: Option<(Instant, &'static str)>) -> SqlResult<bool> {
        let mut waited = false;
        let m = self.manager.clone();
        loop {
            let notified = m.released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = m.state.lock().expect("lock table is never poisoned");
                let mut blocker = None;
                for k in keys {
                    if self.held.contains(k) {
                        continue;
                    }
                    match st.owners.get(k) {
                        Some(&o) if o != self.txn_id => {
                            blocker = Some(o);
                            break;
                        }
                        _ => {
                            st.owners.insert(k.clone(), self.txn_id);
                            self.held.insert(k.clone());
                        }
                    }
                }
                let Some(blocker) = blocker else {
                    st.waits_for.remove(&self.txn_id);
                    return Ok(waited);
                };
                // Would waiting for `blocker` close a cycle in the wait-for graph?
                let mut cur = blocker;
                for _ in 0..=st.waits_for.len() {
                    if cur == self.txn_id {
                        st.waits_for.remove(&self.txn_id);
                        return Err(SqlError::new(
                            "40P01",
                            "deadlock detected: this transaction and another each wait for a row the other has locked",
                        ));
                    }
                    match st.waits_for.get(&cur) {
                        Some(&next) => cur = next,
                        None => break,
                    }
                }
                st.waits_for.insert(self.txn_id, blocker);
            }
            waited = true;
            match deadline {
                None => notified.await,
                Some((at, code)) => {
                    if tokio::time::timeout_at(at.into(), notified).await.is_err() {
                        m.state.lock().expect("lock table is never poisoned").waits_for.remove(&self.txn_id);
                        return Err(if code == "55P03" {
                            SqlError::new("55P03", "canceling statement due to lock timeout")
                        } else {
                            SqlError::new("57014", "canceling statement due to statement timeout")
                        });
                    }
                }
            }
        }
    }

    /// Release everything now (the transaction is over).
    pub fn release(&mut self) {
        if self.held.is_empty() {
            return;
        }
        {
            let mut st = self.manager.state.lock().expect("lock table is never poisoned");
            for k in self.held.drain() {
                if st.owners.get(&k) == Some(&self.txn_id) {
                    st.owners.remove(&k);
                }
            }
            st.waits_for.remove(&self.txn_id);
        }
        self.manager.released.notify_waiters();
    }
}

impl Drop for LockSet {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_gets_the_lock_when_the_holder_releases() {
        let m = Arc::new(LockManager::default());
        let mut a = LockSet::new(m.clone(), 1);
        let mut b = LockSet::new(m.clone(), 2);
        let k = (7, b"k".to_vec());
        assert!(!a.acquire(std::slice::from_ref(&k), None).await.unwrap());
        let waiter = tokio::spawn(async move {
            let waited = b.acquire(&[(7, b"k".to_vec())], None).await.unwrap();
            (waited, b.holds(&(7, b"k".to_vec())))
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "b must wait while a holds the key");
        drop(a);
        assert_eq!(waiter.await.unwrap(), (true, true));
    }

    #[tokio::test]
    async fn a_cycle_is_a_deadlock_and_a_deadline_is_a_timeout() {
        let m = Arc::new(LockManager::default());
        let (x, y) = ((1, b"x".to_vec()), (1, b"y".to_vec()));
        let mut a = LockSet::new(m.clone(), 1);
        let mut b = LockSet::new(m.clone(), 2);
        a.acquire(std::slice::from_ref(&x), None).await.unwrap();
        b.acquire(std::slice::from_ref(&y), None).await.unwrap();
        let y2 = y.clone();
        let a_waits = tokio::spawn(async move {
            let r = a.acquire(&[y2], None).await;
            (r.map_err(|e| e.code), a)
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let e = b.acquire(std::slice::from_ref(&x), None).await.unwrap_err();
        assert_eq!(e.code, "40P01");
        drop(b);
        let (r, a) = a_waits.await.unwrap();
        assert_eq!(r, Ok(true));
        let mut c = LockSet::new(m, 3);
        let soon = Instant::now() + std::time::Duration::from_millis(30);
        assert_eq!(c.acquire(&[x], Some((soon, "55P03"))).await.unwrap_err().code, "55P03");
        drop(a);
    }
}
