//! Replaying recorded transactions (docs/PROVENANCE.md, "Replay audit"). The engine runs over a
//! scratch store that holds exactly the transactions before the one being replayed; each recorded
//! statement runs again, as its principal, with its parameters, at its recorded snapshot, drawing the
//! recorded sequence values and UUIDs, and must produce exactly the recorded entries. The policies,
//! signing keys and append-only tables in force are the scratch store's, i.e. the log's own as of the
//! transaction before. Then the recorded transaction is appended to the scratch store, so the next
//! one sees what the source saw. A child module of `engine`.

use super::*;
use crate::ledger::format::LeafData;
use crate::sql::catalog::RoleRecord;
use crate::sql::policy::{self, Admission};
use crate::sql::provenance::Provenance;

/// Recorded statements parsed once (an application sends the same texts again and again).
#[derive(Default)]
pub struct ParseCache {
    parsed: HashMap<String, Arc<Statement>>,
    /// Per principal and statement text: the parameter types and the plan, kept while the catalog
    /// keeps the generation they were made under (a log of one application repeats a few statements).
    prepared: HashMap<String, HashMap<String, KeptPlan>>,
}

/// The catalog generation a statement was described and planned under, its parameter types and plan.
type KeptPlan = (u64, Vec<DataType>, Arc<PlanCache>);

impl ParseCache {
    /// (Keyed by text, then principal, so a lookup allocates nothing.)
    fn prepared(&self, user: &str, sql: &str, generation: u64) -> Option<(Vec<DataType>, Arc<PlanCache>)> {
        match self.prepared.get(sql)?.get(user) {
            Some((g, types, plan)) if *g == generation => Some((types.clone(), plan.clone())),
            _ => None,
        }
    }

    fn keep(&mut self, user: &str, sql: &str, generation: u64, types: Vec<DataType>, plan: Arc<PlanCache>) {
        if self.prepared.len() > 10_000 {
            self.prepared.clear();
        }
        self.prepared.entry(sql.to_string()).or_default().insert(user.to_string(), (generation, types, plan));
    }

    fn get(&mut self, sql: &str) -> SqlResult<Arc<Statement>> {
        if let Some(s) = self.parsed.get(sql) {
            return Ok(s.clone());
        }
        let mut stmts = crate::sql::parse(sql)?;
        if stmts.len() != 1 {
            return Err(SqlError::syntax(format!("a recorded statement holds {} statements", stmts.len())));
        }
        let s = Arc::new(stmts.remove(0).0);
        if self.parsed.len() > 10_000 {
            self.parsed.clear();
        }
        self.parsed.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

/// A role's entry against the statement the server records with it (`-- create role r [SUPERUSER]`,
/// `-- set password of role r`, `DROP ROLE r`): the entry is of that role; a new role, made by a
/// superuser, is a superuser exactly when its record says so, has no signing keys and need not sign;
/// a password change keeps everything but the SCRAM verifier (superuser, signing keys, REQUIRE
/// SIGNATURE); a drop deletes a role that existed.
fn role_entry_matches(catalog: &crate::sql::catalog::Catalog, p: &Provenance, e: &Entry, by_superuser: bool) -> bool {
    let Ok(name) = std::str::from_utf8(&e.key) else { return false };
    let [stmt] = p.statements.as_slice() else { return false };
    let old = catalog.users.get(name);
    if *stmt == RoleRecord::Drop.text(name) {
        return by_superuser && e.is_delete() && old.is_some();
    }
    if e.is_delete() {
        return false;
    }
    let Ok(new) = serde_json::from_slice::<crate::sql::catalog::UserDef>(&e.value) else { return false };
    if new.name != name {
        return false;
    }
    match old {
        Some(old) => {
            *stmt == RoleRecord::Password.text(name)
                && new.superuser == old.superuser
                && new.signing_keys == old.signing_keys
                && new.require_signature == old.require_signature
        }
        None => {
            *stmt == RoleRecord::Create { superuser: new.superuser }.text(name)
                && by_superuser
                && new.signing_keys.is_empty()
                && !new.require_signature
        }
    }
}

/// Whether a statement's writes go through a SQL transaction (and so can be re-executed).
fn kind_of(p: &Provenance, cache: &mut ParseCache) -> Kind {
    if p.refused.is_some() {
        return Kind::Refusal;
    }
    if p.sequence_state.is_some() {
        return Kind::SequenceState;
    }
    if p.statements.len() == 1 {
        if let Ok(s) = cache.get(&p.statements[0]) {
            if policy::vouch_statement(&s).is_some() {
                return Kind::Governance;
            }
        }
    }
    if p.isolation.is_none() {
        return Kind::Direct;
    }
    Kind::Sql
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Refusal,
    SequenceState,
    /// Role changes and sequence definitions, appended by the server outside a SQL transaction.
    Direct,
    /// CREATE/DROP POLICY and signing-key changes.
    Governance,
    Sql,
}

impl Engine {
    /// Replay source transaction `tx`: check it, then append it to this engine's (scratch) store.
    /// Returns the violations found (empty: the transaction is what its record says).
    pub async fn replay_tx(
        &self,
        tx: u64,
        leaf: &LeafData,
        entries: &[Entry],
        provenance: &[u8],
        cache: &mut ParseCache,
    ) -> SqlResult<Vec<String>> {
        let head = self.ledger.head().size;
        if head + 1 != tx {
            return Err(SqlError::new("XX000", format!("replay: the scratch store holds {head} transactions, cannot replay tx {tx}")));
        }
        let mut v = Vec::new();
        let record = match Provenance::decode(provenance) {
            Ok(r) => Some(r),
            Err(e) => {
                v.push(e);
                None
            }
        };
        let mut replayed: Option<Txn> = None;
        if let Some(p) = &record {
            let catalog = self.catalog();
            let principal = catalog.users.get(&p.user);
            let superuser = principal.is_some_and(|u| u.superuser);
            // The very first transactions create the first role, by the server itself.
            let bootstrap = catalog.users.is_empty() && p.user == "vouchdb";
            if principal.is_none() && !bootstrap {
                v.push(format!("principal \"{}\" is not a role at this point of the log", p.user));
            }
            let kind = kind_of(p, cache);
            // Client signatures: required ones present, every one valid for a key of the role. A
            // sequence's block reservation is the server's own transaction (its entries are checked
            // to be sequence state below), drawn by a signed statement or not.
            if !entries.is_empty() && kind != Kind::SequenceState {
                self.replay_signature(p, leaf, entries, &mut v);
            }
            match kind {
                Kind::Refusal => {
                    if !entries.is_empty() {
                        v.push(format!("a refused statement's transaction wrote {} entries", entries.len()));
                    }
                }
                Kind::SequenceState => {
                    if let Some(e) = entries
                        .iter()
                        .find(|e| !matches!(e.table, crate::sql::catalog::SYS_SEQUENCE_VALUES | crate::sql::catalog::SYS_SEQUENCES))
                    {
                        v.push(format!("a sequence-state transaction wrote an entry of table {}", e.table));
                    }
                }
                Kind::Direct => {
                    for e in entries {
                        let ok = match e.table {
                            crate::sql::catalog::SYS_USERS => {
                                (superuser || bootstrap || e.key == p.user.as_bytes())
                                    && role_entry_matches(&catalog, p, e, superuser || bootstrap)
                            }
                            crate::sql::catalog::SYS_SEQUENCES | crate::sql::catalog::SYS_SEQUENCE_VALUES => true,
                            _ => false,
                        };
                        if !ok {
                            v.push(format!(
                                "entry of table {} is not one the server writes outside a SQL transaction for \"{}\"",
                                e.table, p.user
                            ));
                        }
                    }
                    if entries.iter().any(|e| e.table == crate::sql::catalog::SYS_SEQUENCES) {
                        self.replay_admission(p, cache, &mut v);
                    }
                }
                Kind::Governance => {
                    if !superuser {
                        v.push(format!("\"{}\" changed policies or signing keys without being a superuser", p.user));
                    }
                    self.replay_admission(p, cache, &mut v);
                    // Re-executed against the catalog before it: its one entry (besides a
                    // signature's nonce) must be the one the recorded statement makes.
                    let written: Vec<&Entry> = entries.iter().filter(|e| e.table != governance::SYS_NONCES).collect();
                    let change = cache
                        .get(&p.statements[0])
                        .ok()
                        .and_then(|stmt| policy::vouch_statement(&stmt))
                        .map(|stmt| governance::governance_change(&self.catalog(), stmt));
                    match change {
                        Some(Ok(change)) => {
                            let expected = change.entry();
                            if written.len() != 1 || expected.as_ref() != Some(written[0]) {
                                v.push(format!(
                                    "the policy or signing-key change wrote {} entries that its statement does not make: {}",
                                    written.len(),
                                    p.statements[0]
                                ));
                            }
                        }
                        Some(Err(e)) => v.push(format!("statement 1 failed on replay ({}: {}): {}", e.code, e.message, p.statements[0])),
                        None => v.push(format!("statement 1 is not a policy or signing-key change: {}", p.statements[0])),
                    }
                }
                Kind::Sql => {
                    self.replay_admission(p, cache, &mut v);
                    // Table privileges (GRANT/REVOKE) of a role without policies, as the server checks
                    // them before each statement, against the catalog before this transaction.
                    for (i, sql) in p.statements.iter().enumerate() {
                        if let Ok(stmt) = cache.get(sql) {
                            if let Err(e) = self.check_privileges(&p.user, &stmt) {
                                v.push(format!("statement {} needs a privilege \"{}\" did not hold ({}): {sql}", i + 1, p.user, e.message));
                            }
                        }
                    }
                    if let Some(n) = p.next_table_id {
                        let next = self.catalog().next_table_id;
                        if n < next {
                            v.push(format!("its DDL handed out object ids from {n}, but ids up to {} were already used", next - 1));
                        }
                        self.update_catalog(|c| c.next_table_id = c.next_table_id.max(n));
                    }
                    match self.replay_sql(p, cache).await {
                        Ok((txn, counts)) => {
                            self.replay_max_rows(p, &counts, &mut v);
                            let catalog = txn.catalog.clone().unwrap_or_else(|| self.committed_catalog());
                            let mut produced: Vec<Entry> = txn
                                .writes
                                .iter()
                                .map(|((table, key), row)| self.write_entry(&catalog, *table, key.clone(), row.clone()))
                                .collect::<SqlResult<_>>()?;
                            if let Some(sig) = &p.signature {
                                produced.push(Entry::put(governance::SYS_NONCES, governance::nonce_key(&sig.key, &sig.nonce), Vec::new()));
                                produced.sort_by(|a, b| (a.table, &a.key).cmp(&(b.table, &b.key)));
                            }
                            compare_entries(entries, &produced, &mut v);
                            replayed = Some(txn);
                        }
                        Err(e) => v.push(e),
                    }
                }
            }
            self.replay_append_only(entries, &mut v)?;
        }
        self.append_recorded(leaf, entries, provenance, replayed).await?;
        Ok(v)
    }

    /// Run a SQL transaction's recorded statements; returns the transaction (its writes, not
    /// committed) and the rows each statement affected.
    async fn replay_sql(&self, p: &Provenance, cache: &mut ParseCache) -> Result<(Txn, Vec<u64>), String> {
        let isolation = p.isolation.as_deref().and_then(Isolation::parse).unwrap_or(Isolation::ReadCommitted);
        let s = Session::new(&p.user);
        let mut txn = self.begin_txn_with(true, isolation);
        txn.start_us = p.now_us.unwrap_or_default();
        txn.replay = Some(Arc::new(Mutex::new(sequence::ReplayDraws {
            sequence_values: p.sequence_values.iter().cloned().collect(),
            random_uuids: p.random_uuids.iter().cloned().collect(),
        })));
        txn.seq_session = s.seq.clone();
        let mut copies = 0;
        let mut counts = Vec::new();
        for (i, sql) in p.statements.iter().enumerate() {
            let fail = |e: SqlError| format!("statement {} failed on replay ({}: {}): {sql}", i + 1, e.code, e.message);
            let stmt = cache.get(sql).map_err(fail)?;
            let texts = p.params.get(i).cloned().unwrap_or_default();
            // The statement's parameter types and plan, made once per text while the catalog is the
            // same (not under a transaction's own catalog, after DDL in it).
            let generation = self.catalog_generation.load(Ordering::Acquire);
            let reuse = txn.catalog.is_none();
            let (types, plan) = match cache.prepared(&p.user, sql, generation).filter(|_| reuse) {
                Some(known) => known,
                None => {
                    let types = if texts.is_empty() {
                        Vec::new()
                    } else {
                        let _scope = TxnCatalog::enter(txn.catalog.as_ref());
                        self.describe(&s, &stmt, &vec![None; texts.len()]).map_err(fail)?.params
                    };
                    let plan = Arc::new(PlanCache::default());
                    if reuse {
                        cache.keep(&p.user, sql, generation, types.clone(), plan.clone());
                    }
                    (types, plan)
                }
            };
            let params = texts
                .iter()
                .enumerate()
                .map(|(k, t)| match t {
                    None => Ok(Value::Null),
                    Some(t) => Value::parse(t, types.get(k).copied().unwrap_or(DataType::Text)),
                })
                .collect::<SqlResult<Vec<_>>>()
                .map_err(fail)?;
            txn.snapshot = p.snapshots.get(i).copied().unwrap_or_else(|| self.ledger.head().size);
            let before = txn.writes.clone();
            let out = if is_ddl(&stmt) {
                self.ddl_in(&s, &mut txn, &stmt, sql).await
            } else {
                if matches!(&*stmt, Statement::Copy { to: false, .. }) {
                    txn.copy_input = p.copy_bytes(copies).map(Arc::new);
                    copies += 1;
                }
                let out = self.run(&p.user, &s.settings, &mut txn, &stmt, &params, reuse.then_some(&*plan));
                txn.copy_input = None;
                match out {
                    Ok(out) => {
                        let _scope = TxnCatalog::enter(txn.catalog.clone().as_ref());
                        let gen = sequence::Generated::new(self, txn.seq_session.clone(), &p.user, txn.replay.clone());
                        let env = Env {
                            params: &params,
                            aggs: &[],
                            now_us: txn.start_us,
                            user: &p.user,
                            sub: None,
                            outer: &[],
                            settings: Some(&s.settings),
                            gen: Some(&gen),
                        };
                        self.enforce_constraints(&mut txn, &before, &env).map(|_| out)
                    }
                    Err(e) => Err(e),
                }
            };
            counts.push(governance::rows_affected(&out.map_err(fail)?, &before, &txn.writes));
        }
        Self::seal_restarted(&mut txn);
        Ok((txn, counts))
    }

    /// Every statement of a role with policies was admitted by the rule its record names (and a
    /// statement of a role without policies names none).
    fn replay_admission(&self, p: &Provenance, cache: &mut ParseCache, v: &mut Vec<String>) {
        let catalog = self.catalog();
        for (i, sql) in p.statements.iter().enumerate() {
            let Ok(stmt) = cache.get(sql) else { continue };
            let params = p.params.get(i).cloned().unwrap_or_default();
            let recorded = p.policies.get(i).cloned().flatten();
            let has_policy = catalog.policies.values().any(|x| x.role == p.user);
            let admission = if has_policy && governance::governed(&stmt) {
                policy::admit(catalog.policies.values(), &p.user, &policy::normalise(&stmt), &params)
            } else {
                Ok(Admission::NoPolicy)
            };
            match (admission, recorded) {
                (Ok(Admission::Admitted { rule, .. }), Some(r)) if rule == r => {}
                (Ok(Admission::Admitted { rule, .. }), r) => {
                    v.push(format!("statement {} is admitted by {rule}, but its record names {r:?}", i + 1))
                }
                (Ok(Admission::Refused), _) => {
                    v.push(format!("statement {} is not admitted by any policy of role \"{}\" in force at this tx: {sql}", i + 1, p.user))
                }
                (Ok(Admission::NoPolicy), Some(r)) => v.push(format!("statement {} names policy rule {r}, which does not apply", i + 1)),
                (Ok(Admission::NoPolicy), None) => {}
                (Err(e), _) => v.push(format!("statement {}: a policy template does not parse: {}", i + 1, e.message)),
            }
        }
    }

    /// A statement admitted by a rule with MAX ROWS affected no more rows on replay.
    fn replay_max_rows(&self, p: &Provenance, counts: &[u64], v: &mut Vec<String>) {
        let catalog = self.catalog();
        for (i, rule) in p.policies.iter().enumerate() {
            let Some(rule) = rule else { continue };
            let Some(max) = catalog
                .policies
                .values()
                .flat_map(|x| x.rules.iter().enumerate().map(move |(k, r)| (x.rule_id(k), r.max_rows)))
                .find(|(id, _)| id == rule)
                .and_then(|(_, m)| m)
            else {
                continue;
            };
            if counts.get(i).is_some_and(|&n| n > max) {
                v.push(format!("statement {} affected {} rows, more than rule {rule}'s MAX ROWS {max}", i + 1, counts[i]));
            }
        }
    }

    /// Client signatures: present where the role requires one, made with a key bound to the role,
    /// over exactly these statements, parameters, client timestamp and nonce; the nonce unused before.
    fn replay_signature(&self, p: &Provenance, leaf: &LeafData, entries: &[Entry], v: &mut Vec<String>) {
        let catalog = self.catalog();
        let Some(role) = catalog.users.get(&p.user) else { return };
        let Some(sig) = &p.signature else {
            if role.require_signature {
                v.push(format!("role \"{}\" requires signed transactions, and this one is not signed", p.user));
            }
            return;
        };
        if !role.signing_keys.contains(&sig.key) {
            v.push(format!("signed with a key that is not bound to role \"{}\" at this tx", p.user));
        }
        let message = crate::sql::signature::signed_message(&p.user, leaf.client_time_us, &sig.nonce, &p.statements, &p.params);
        if let Err(e) = crate::sql::signature::verify(&sig.key, &message, &sig.signature) {
            v.push(format!("the client signature does not verify: {e}"));
        }
        let key = governance::nonce_key(&sig.key, &sig.nonce);
        if !entries.iter().any(|e| e.table == governance::SYS_NONCES && e.key == key) {
            v.push(format!("the nonce \"{}\" is not spent by the transaction", sig.nonce));
        }
        if self.ledger.get_latest(governance::SYS_NONCES, &key).ok().flatten().is_some() {
            v.push(format!("the nonce \"{}\" was used before with this key (a replayed signature)", sig.nonce));
        }
    }

    /// No entry of an append-only table deletes or replaces an earlier one.
    fn replay_append_only(&self, entries: &[Entry], v: &mut Vec<String>) -> SqlResult<()> {
        let catalog = self.catalog();
        for e in entries {
            let Some(t) = catalog.table_by_id(e.table).filter(|t| t.append_only) else { continue };
            if e.is_delete() {
                v.push(format!("deletes a row of append-only table \"{}\"", t.name));
            } else if self.ledger.get_latest(e.table, &e.key)?.is_some() {
                v.push(format!("replaces a row of append-only table \"{}\"", t.name));
            }
        }
        Ok(())
    }

    /// Append the recorded transaction to the scratch store (with its index entries), and bring the
    /// catalog up to date when it changed one.
    async fn append_recorded(&self, leaf: &LeafData, entries: &[Entry], provenance: &[u8], replayed: Option<Txn>) -> SqlResult<()> {
        let recorded: BTreeMap<WriteKey, Option<Vec<u8>>> =
            entries.iter().map(|e| ((e.table, e.key.clone()), (!e.is_delete()).then(|| e.value.clone()))).collect();
        if recorded.is_empty() {
            self.ledger
                .append(NewTx {
                    entries: vec![],
                    provenance: provenance.to_vec(),
                    client_time_us: leaf.client_time_us,
                    index_entries: vec![],
                })
                .await?;
            return Ok(());
        }
        let mut txn = replayed.unwrap_or_else(|| self.begin_txn_with(false, Isolation::ReadCommitted));
        txn.isolation = Isolation::ReadCommitted;
        txn.writes = recorded;
        txn.replay.get_or_insert_with(Default::default);
        let who = Who {
            user: String::new(),
            auth: Default::default(),
            session: 0,
            client_time_us: leaf.client_time_us,
            signature: None,
            consumed: Default::default(),
        };
        // `commit` makes no client-time, signature or append-only checks for a replayed transaction:
        // those were checked above, against the record.
        self.commit(&who, txn).await?;
        if entries.iter().any(|e| {
            e.table < crate::sql::catalog::FIRST_USER_TABLE
                && e.table != governance::SYS_NONCES
                && e.table != crate::sql::catalog::SYS_REFERENCES
        }) {
            self.install_catalog(Arc::new(Catalog::load(&self.ledger)?));
        }
        Ok(())
    }
}

/// Compare recorded and replayed entries byte for byte; name the first difference.
fn compare_entries(recorded: &[Entry], produced: &[Entry], v: &mut Vec<String>) {
    let describe = |e: &Entry| format!("table {} key {}{}", e.table, hex::encode(&e.key), if e.is_delete() { " (delete)" } else { "" });
    for (i, (r, p)) in recorded.iter().zip(produced).enumerate() {
        if r.encode() != p.encode() {
            v.push(format!("entry {i}: the log has {}, replaying the statements gives {}", describe(r), describe(p)));
            return;
        }
    }
    if recorded.len() != produced.len() {
        let (more, which) = if recorded.len() > produced.len() {
            (&recorded[produced.len()], "the log has an entry the statements do not produce")
        } else {
            (&produced[recorded.len()], "the statements produce an entry the log does not have")
        };
        v.push(format!("{which}: {} ({} recorded, {} replayed)", describe(more), recorded.len(), produced.len()));
    }
}
