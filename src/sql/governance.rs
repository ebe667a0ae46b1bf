//! Who may change what (docs/PROVENANCE.md): allowlist policies checked before a writing statement
//! runs, refusals recorded in the log, `CREATE/DROP POLICY` and the signing keys bound to roles. A
//! child module of `engine`.

use super::*;
use crate::sql::catalog::UserDef;
use crate::sql::policy::{self, Admission, PolicyDef, VouchStatement};
use crate::sql::provenance::{ClientSignature, Refusal};

/// Whether a statement is governed by policies: everything that can write.
pub(super) fn governed(stmt: &Statement) -> bool {
    writing_statement(stmt).is_some()
        || policy::vouch_statement(stmt).is_some()
        || matches!(
            stmt,
            Statement::CreateRole(_) | Statement::AlterRole { .. } | Statement::CreateSequence { .. } | Statement::AlterTable(_)
        )
}

/// The rows a statement affected, for MAX ROWS: its command's count (`UPDATE 3`), or the rows of user
/// tables it wrote (`after` against `before`: rows deleted by TRUNCATE, changed by referential
/// actions), whichever is larger.
pub(super) fn rows_affected(
    out: &Outcome,
    before: &BTreeMap<WriteKey, Option<Vec<u8>>>,
    after: &BTreeMap<WriteKey, Option<Vec<u8>>>,
) -> u64 {
    let tagged = match out {
        Outcome::Rows { tag, .. } | Outcome::Command(tag) => tag.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0),
        _ => 0,
    };
    let written =
        after.iter().filter(|(k, row)| k.0 >= crate::sql::catalog::FIRST_USER_TABLE && before.get(*k) != Some(*row)).count() as u64;
    tagged.max(written)
}

/// An append-only table a statement would replace or delete rows of (UPDATE, DELETE, TRUNCATE).
pub(super) fn append_only_target(catalog: &Catalog, stmt: &Statement) -> Option<String> {
    let names: Vec<&ast::ObjectName> = match stmt {
        Statement::Update(u) => match &u.table.relation {
            ast::TableFactor::Table { name, .. } => vec![name],
            _ => vec![],
        },
        Statement::Delete(d) => {
            let (ast::FromTable::WithFromKeyword(from) | ast::FromTable::WithoutKeyword(from)) = &d.from;
            from.iter()
                .filter_map(|t| match &t.relation {
                    ast::TableFactor::Table { name, .. } => Some(name),
                    _ => None,
                })
                .collect()
        }
        Statement::Truncate(t) => t.table_names.iter().map(|t| &t.name).collect(),
        _ => vec![],
    };
    names.into_iter().map(object_name).find(|n| catalog.tables.get(n).is_some_and(|t| t.append_only))
}

/// The error for a write that would replace or delete a row of append-only table `table`.
pub(super) fn append_only_error(table: &str) -> SqlError {
    SqlError::new(
        "42501",
        format!("table \"{table}\" is append-only: its rows cannot be updated, deleted or overwritten; nothing was written"),
    )
}

/// System table 7: spent nonces of client signatures, keyed by `nonce_key` (value empty).
pub const SYS_NONCES: u32 = 7;

/// The key of a spent nonce: the signing key's fingerprint (32 bytes) then the nonce's bytes.
pub(crate) fn nonce_key(key_pem: &str, nonce: &str) -> Vec<u8> {
    let mut k = crate::sql::signature::fingerprint_of_pem(key_pem).and_then(|f| hex::decode(f).ok()).unwrap_or_default();
    k.extend_from_slice(nonce.as_bytes());
    k
}

/// The privileges GRANT and REVOKE handle on tables.
const TABLE_PRIVILEGES: [&str; 5] = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"];

/// What a GRANT or REVOKE names: the tables (each owned by `user`, or `user` a superuser), the
/// privileges and the grantee roles (`public` for PUBLIC).
pub(super) fn grant_targets(
    catalog: &Catalog,
    user: &str,
    privileges: &ast::Privileges,
    objects: Option<&ast::GrantObjects>,
    grantees: &[ast::Grantee],
) -> SqlResult<GrantTargets> {
    let privs: Vec<&'static str> = match privileges {
        ast::Privileges::All { .. } => TABLE_PRIVILEGES.to_vec(),
        ast::Privileges::Actions(actions) => actions
            .iter()
            .map(|a| {
                let name = a.to_string().to_uppercase();
                let word = name.split_whitespace().next().unwrap_or_default().to_string();
                TABLE_PRIVILEGES.iter().find(|p| **p == word).copied().ok_or_else(|| {
                    SqlError::unsupported(format!("privilege {name} is not supported (SELECT, INSERT, UPDATE, DELETE, TRUNCATE are)"))
                })
            })
            .collect::<SqlResult<_>>()?,
    };
    let names: Vec<String> = match objects {
        Some(ast::GrantObjects::Tables(names)) => names.iter().map(object_name).collect(),
        Some(ast::GrantObjects::AllTablesInSchema { .. }) => {
            catalog.user_tables().map(|t| &t.name).chain(catalog.views.keys()).cloned().collect()
        }
        _ => return Err(SqlError::unsupported("GRANT and REVOKE are supported on tables")),
    };
    let mut tables = Vec::new();
    let mut views = Vec::new();
    for n in names {
        if let Some(v) = catalog.views.get(&n) {
            if !owns(catalog, user, v.owner.as_deref()) {
                return Err(SqlError::new("42501", format!("permission denied for view {n}: only its owner or a superuser grants on it")));
            }
            views.push(v.clone());
            continue;
        }
        let t = catalog.table(&n)?.clone();
        if !holds_owner(catalog, user, &t) {
            return Err(SqlError::new("42501", format!("permission denied for table {n}: only its owner or a superuser grants on it")));
        }
        tables.push(t);
    }
    let mut roles = Vec::new();
    for g in grantees {
        let name = match &g.name {
            Some(ast::GranteeName::ObjectName(o)) => object_name(o),
            None if g.to_string().eq_ignore_ascii_case("public") => "public".to_string(),
            _ => return Err(SqlError::unsupported(format!("grantee {g} is not supported"))),
        };
        if name != "public" && !catalog.users.contains_key(&name) {
            return Err(SqlError::new("42704", format!("role \"{name}\" does not exist")));
        }
        roles.push(name);
    }
    Ok(GrantTargets { tables, views, privileges: privs, roles })
}

/// What one GRANT or REVOKE applies to.
pub(super) struct GrantTargets {
    pub tables: Vec<TableDef>,
    pub views: Vec<crate::sql::catalog::ViewDef>,
    pub privileges: Vec<&'static str>,
    pub roles: Vec<String>,
}

/// Whether `user` owns `t` (or is a superuser).
fn holds_owner(catalog: &Catalog, user: &str, t: &TableDef) -> bool {
    owns(catalog, user, t.owner.as_deref())
}

/// Whether `user` is a superuser or the owner `owner` names (None: superusers own the object).
fn owns(catalog: &Catalog, user: &str, owner: Option<&str>) -> bool {
    catalog.users.get(user).is_some_and(|u| u.superuser) || owner == Some(user)
}

/// Whether `user` holds `privilege` on `t`: superusers and the owner hold every privilege.
pub(super) fn holds(catalog: &Catalog, user: &str, t: &TableDef, privilege: &str) -> bool {
    holds_on(catalog, user, t.owner.as_deref(), &t.grants, privilege)
}

/// `holds` for any object with an owner (None: superusers own it) and grants.
fn holds_on(catalog: &Catalog, user: &str, owner: Option<&str>, grants: &Grants, privilege: &str) -> bool {
    owns(catalog, user, owner) || [user, "public"].iter().any(|r| grants.get(*r).is_some_and(|p| p.contains(privilege)))
}

type Grants = std::collections::BTreeMap<String, std::collections::BTreeSet<String>>;

/// Reading view `v` as `user`: SELECT on the view, and the relations it reads as the view's owner
/// (as PostgreSQL checks a view's underlying tables with its owner's privileges). Returns the first
/// relation refused.
fn view_refusal(catalog: &Catalog, user: &str, v: &crate::sql::catalog::ViewDef, depth: usize) -> Option<String> {
    if !holds_on(catalog, user, v.owner.as_deref(), &v.grants, "SELECT") {
        return Some(v.name.clone());
    }
    // A view from before owners were recorded is a superuser's: it reads everything.
    let owner = v.owner.as_deref()?;
    if depth > 32 {
        return None;
    }
    super::view_reads(&v.sql).into_iter().find_map(|n| match (catalog.tables.get(&n), catalog.views.get(&n)) {
        (Some(t), _) if !holds(catalog, owner, t, "SELECT") => Some(n),
        (None, Some(inner)) => view_refusal(catalog, owner, inner, depth + 1),
        _ => None,
    })
}

impl Engine {
    /// Table privileges, as PostgreSQL checks them, for roles without a policy (a role with policies
    /// is governed by them; superusers hold every privilege). The statement's target needs the
    /// privilege of its command; every other table it reads needs SELECT; ALTER, DROP, CREATE INDEX
    /// and COMMENT need the owner.
    pub(super) fn check_privileges(&self, user: &str, stmt: &Statement) -> SqlResult<()> {
        let catalog = self.catalog();
        if catalog.users.get(user).is_some_and(|u| u.superuser) || catalog.policies.values().any(|p| p.role == user) {
            return Ok(());
        }
        let denied = |n: &str| {
            let kind = if catalog.views.contains_key(n) { "view" } else { "table" };
            SqlError::new("42501", format!("permission denied for {kind} {n}"))
        };
        let owner_only = |n: &str| SqlError::new("42501", format!("must be owner of table {n}"));
        let (target, privilege): (Option<String>, &str) = match stmt {
            Statement::Insert(ins) => match &ins.table {
                ast::TableObject::TableName(name) => (Some(object_name(name)), "INSERT"),
                _ => (None, "INSERT"),
            },
            Statement::Update(u) => match &u.table.relation {
                ast::TableFactor::Table { name, .. } => (Some(object_name(name)), "UPDATE"),
                _ => (None, "UPDATE"),
            },
            Statement::Delete(d) => {
                let (ast::FromTable::WithFromKeyword(from) | ast::FromTable::WithoutKeyword(from)) = &d.from;
                match from.first().map(|t| &t.relation) {
                    Some(ast::TableFactor::Table { name, .. }) => (Some(object_name(name)), "DELETE"),
                    _ => (None, "DELETE"),
                }
            }
            Statement::Truncate(t) => {
                for n in t.table_names.iter().map(|t| object_name(&t.name)) {
                    if let Some(def) = catalog.tables.get(&n) {
                        if !holds(&catalog, user, def, "TRUNCATE") {
                            return Err(denied(&n));
                        }
                    }
                }
                return Ok(());
            }
            Statement::Copy { source: ast::CopySource::Table { table_name, .. }, to, .. } => {
                (Some(object_name(table_name)), if *to { "SELECT" } else { "INSERT" })
            }
            Statement::AlterTable(a) => {
                let n = object_name(&a.name);
                return match catalog.tables.get(&n) {
                    Some(t) if !holds_owner(&catalog, user, t) => Err(owner_only(&n)),
                    _ => Ok(()),
                };
            }
            Statement::Drop { object_type: ast::ObjectType::Table, names, .. } => {
                for n in names.iter().map(object_name) {
                    if catalog.tables.get(&n).is_some_and(|t| !holds_owner(&catalog, user, t)) {
                        return Err(owner_only(&n));
                    }
                }
                return Ok(());
            }
            // Dropping or replacing a view needs its owner.
            Statement::Drop { object_type: ast::ObjectType::View, names, .. } => {
                for n in names.iter().map(object_name) {
                    if catalog.views.get(&n).is_some_and(|v| !owns(&catalog, user, v.owner.as_deref())) {
                        return Err(SqlError::new("42501", format!("must be owner of view {n}")));
                    }
                }
                return Ok(());
            }
            Statement::CreateView(cv) => {
                let n = object_name(&cv.name);
                if catalog.views.get(&n).is_some_and(|v| !owns(&catalog, user, v.owner.as_deref())) {
                    return Err(SqlError::new("42501", format!("must be owner of view {n}")));
                }
                (None, "SELECT")
            }
            // Dropping an index (a UNIQUE constraint's too) needs the owner of its table.
            Statement::Drop { object_type: ast::ObjectType::Index, names, .. } => {
                for n in names.iter().map(object_name) {
                    let table = catalog.tables.values().find(|t| t.indexes.iter().any(|i| i.name == n));
                    if table.is_some_and(|t| !holds_owner(&catalog, user, t)) {
                        return Err(SqlError::new("42501", format!("must be owner of index {n}")));
                    }
                }
                return Ok(());
            }
            Statement::CreateIndex(ci) => {
                let n = object_name(&ci.table_name);
                return match catalog.tables.get(&n) {
                    Some(t) if !holds_owner(&catalog, user, t) => Err(owner_only(&n)),
                    _ => Ok(()),
                };
            }
            _ => (None, "SELECT"),
        };
        // An upsert may overwrite rows: it needs UPDATE as well, as in PostgreSQL.
        let upsert = matches!(stmt, Statement::Insert(ins)
            if ins.or == Some(ast::SqliteOnConflict::Replace)
                || matches!(&ins.on, Some(ast::OnInsert::OnConflict(c)) if matches!(c.action, ast::OnConflictAction::DoUpdate(_))));
        if let Some(n) = &target {
            if let Some(t) = catalog.tables.get(n) {
                if !holds(&catalog, user, t, privilege) || (upsert && !holds(&catalog, user, t, "UPDATE")) {
                    return Err(denied(n));
                }
            }
        }
        let mut missing = None;
        let _ = ast::visit_relations(stmt, |rel| {
            let n = object_name(rel);
            if Some(&n) != target.as_ref() {
                if let Some(t) = catalog.tables.get(&n) {
                    if !holds(&catalog, user, t, "SELECT") {
                        missing = Some(n);
                        return std::ops::ControlFlow::Break(());
                    }
                } else if let Some(refused) = catalog.views.get(&n).and_then(|v| view_refusal(&catalog, user, v, 0)) {
                    missing = Some(refused);
                    return std::ops::ControlFlow::Break(());
                }
            }
            std::ops::ControlFlow::Continue(())
        });
        match missing {
            Some(n) => Err(denied(&n)),
            None => Ok(()),
        }
    }

    /// SELECT on a table named by a string (the proof functions, `history`), for roles without a policy.
    pub(super) fn may_read(&self, user: &str, t: &TableDef) -> SqlResult<()> {
        let catalog = self.catalog();
        if catalog.policies.values().any(|p| p.role == user) || holds(&catalog, user, t, "SELECT") {
            return Ok(());
        }
        Err(SqlError::new("42501", format!("permission denied for table {}", t.name)))
    }

    /// Check the client signature a commit carries against the signing keys of its role, and refuse
    /// an unsigned commit of a role that requires signatures. Returns what the provenance records.
    pub(super) fn check_signature(&self, who: &Who, statements: &[StmtRecord]) -> SqlResult<Option<ClientSignature>> {
        let (keys, required) = match self.catalog().users.get(&who.user) {
            Some(u) => (u.signing_keys.clone(), u.require_signature),
            None => (Vec::new(), false),
        };
        let Some((nonce, sig)) = &who.signature else {
            if required {
                return Err(SqlError::new(
                    "42501",
                    format!(
                        "role \"{}\" must sign its transactions: set {} and {} before committing; nothing was committed",
                        who.user,
                        super::SIGNATURE,
                        super::NONCE
                    ),
                ));
            }
            return Ok(None);
        };
        if keys.is_empty() {
            return Err(SqlError::new(
                "42501",
                format!("role \"{}\" has no signing key to check the client signature with; nothing was committed", who.user),
            ));
        }
        let texts: Vec<String> = statements.iter().map(|s| s.sql.clone()).collect();
        let params: Vec<Vec<Option<String>>> = statements.iter().map(|s| s.params.clone()).collect();
        let message = crate::sql::signature::signed_message(&who.user, who.client_time_us, nonce, &texts, &params);
        match keys.iter().find(|k| crate::sql::signature::verify(k, &message, sig).is_ok()) {
            Some(key) => Ok(Some(ClientSignature { key: key.clone(), nonce: nonce.clone(), signature: sig.clone() })),
            None => Err(SqlError::new(
                "42501",
                format!(
                    "the client signature does not verify with any signing key of role \"{}\" over this transaction's statements, parameters, client timestamp and nonce; nothing was committed",
                    who.user
                ),
            )),
        }
    }

    /// Check a statement of `s` against the policies of its role. A refusal is recorded in the log (a
    /// transaction with no entries) before the 42501 error is returned.
    pub(super) async fn admit(&self, s: &Session, stmt: &Statement, sql: &str, params: &[Value]) -> SqlResult<Admission> {
        let catalog = self.catalog();
        if !catalog.policies.values().any(|p| p.role == s.user) || !governed(stmt) {
            return Ok(Admission::NoPolicy);
        }
        let texts: Vec<Option<String>> = params.iter().map(|v| v.to_text(v.natural_type())).collect();
        let admission = policy::admit(catalog.policies.values(), &s.user, &policy::normalise(stmt), &texts)?;
        drop(catalog);
        if admission == Admission::Refused {
            let e = SqlError::new(
                "42501",
                format!("permission denied: no policy of role \"{}\" admits this statement; the refusal is recorded in the log", s.user),
            );
            self.record_refusal(s, sql, params, &e).await?;
            return Err(e);
        }
        Ok(admission)
    }

    /// Append a transaction with no entries whose provenance holds the refused statement.
    pub(super) async fn record_refusal(&self, s: &Session, sql: &str, params: &[Value], e: &SqlError) -> SqlResult<()> {
        let who = s.who().unwrap_or_else(|_| Who {
            user: s.user.clone(),
            auth: s.auth.clone(),
            session: s.pid.into(),
            client_time_us: 0,
            signature: None,
            consumed: Default::default(),
        });
        let mut p = who.record(
            &[StmtRecord::new(sql, params, None)],
            &[self.ledger.head().size],
            Isolation::ReadCommitted,
            now_us(),
            &Default::default(),
        );
        p.refused = Some(Refusal { sqlstate: e.code.to_string(), message: e.message.clone() });
        tracing::warn!(user = %s.user, statement = sql, "statement refused by policy");
        self.ledger.append(NewTx { entries: vec![], provenance: p.encode(), client_time_us: 0, index_entries: vec![] }).await?;
        Ok(())
    }

    /// Append a catalog change made by a vouchdb statement as a transaction of its own.
    async fn append_governance(&self, who: &Who, sql: &str, entry: Entry) -> SqlResult<()> {
        self.check_client_time(who)?;
        let stmts = [StmtRecord::new(sql, &[], None)];
        // An admin that must sign signs policy changes too.
        let signature = self.check_signature(who, &stmts)?;
        let mut entries = vec![entry];
        if let Some(sig) = &signature {
            let key = nonce_key(&sig.key, &sig.nonce);
            if self.ledger.get_latest(SYS_NONCES, &key)?.is_some() {
                return Err(SqlError::new("42501", format!("nonce \"{}\" was already used with this signing key", sig.nonce)));
            }
            entries.push(Entry::put(SYS_NONCES, key, Vec::new()));
        }
        let mut p = who.record(&stmts, &[self.ledger.head().size], Isolation::ReadCommitted, now_us(), &Default::default());
        p.signature = signature;
        self.ledger.append(NewTx { entries, provenance: p.encode(), client_time_us: who.client_time_us, index_entries: vec![] }).await?;
        who.consumed.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Run one of vouchdb's own statements (policies, signing keys). Superusers only; outside
    /// transaction blocks, like role changes.
    pub(super) async fn vouch_statement(&self, s: &mut Session, v: VouchStatement, sql: &str) -> SqlResult<Outcome> {
        if s.in_transaction() {
            return Err(SqlError::unsupported("policy and signing-key changes inside a transaction block are not supported"));
        }
        // Like role changes, these commit on their own: what the query string did before commits first.
        self.end_implicit(s).await?;
        let who = s.who()?;
        let out = self.vouch_statement_as(s, &who, v, sql).await;
        s.consume(&who);
        out
    }

    async fn vouch_statement_as(&self, s: &Session, who: &Who, v: VouchStatement, sql: &str) -> SqlResult<Outcome> {
        if !self.catalog().users.get(&s.user).is_some_and(|u| u.superuser) {
            return Err(SqlError::new("42501", "permission denied: only superusers change policies and signing keys"));
        }
        let _guard = self.ddl.lock().await;
        let change = governance_change(&self.catalog(), v)?;
        if let Some(entry) = change.entry() {
            self.append_governance(who, sql, entry).await?;
        }
        let tag = change.tag();
        self.update_catalog(|c| match change {
            GovernanceChange::CreatePolicy(p) => {
                c.policies.insert(p.name.clone(), p);
            }
            GovernanceChange::DropPolicy(name) => {
                c.policies.remove(&name);
            }
            GovernanceChange::Role(user) => {
                c.users.insert(user.name.clone(), user);
            }
            GovernanceChange::Nothing => {}
        });
        Ok(Outcome::Command(tag.into()))
    }
}

/// What a policy or signing-key statement changes, decided from the catalog before it alone: the
/// server applies it, and the replay audit recomputes it and compares the entry with the log's.
pub(super) enum GovernanceChange {
    CreatePolicy(PolicyDef),
    DropPolicy(String),
    /// The role's new catalog entry (signing keys, REQUIRE SIGNATURE).
    Role(UserDef),
    /// `DROP POLICY IF EXISTS` of a policy that does not exist: nothing is written.
    Nothing,
}

impl GovernanceChange {
    /// The one entry the change writes (besides a signature's nonce).
    pub(super) fn entry(&self) -> Option<Entry> {
        match self {
            GovernanceChange::CreatePolicy(p) => Some(p.entry()),
            GovernanceChange::DropPolicy(name) => Some(Entry::delete(policy::SYS_POLICIES, name.as_bytes().to_vec())),
            GovernanceChange::Role(user) => Some(user.entry()),
            GovernanceChange::Nothing => None,
        }
    }

    fn tag(&self) -> &'static str {
        match self {
            GovernanceChange::CreatePolicy(_) => "CREATE POLICY",
            GovernanceChange::DropPolicy(_) | GovernanceChange::Nothing => "DROP POLICY",
            GovernanceChange::Role(_) => "ALTER ROLE",
        }
    }
}

pub(super) fn governance_change(catalog: &Catalog, v: VouchStatement) -> SqlResult<GovernanceChange> {
    match v {
        VouchStatement::CreatePolicy(p) => {
            if !catalog.users.contains_key(&p.role) {
                return Err(SqlError::new("42704", format!("role \"{}\" does not exist", p.role)));
            }
            if catalog.policies.contains_key(&p.name) {
                return Err(SqlError::new("42710", format!("policy \"{}\" already exists", p.name)));
            }
            Ok(GovernanceChange::CreatePolicy(p))
        }
        VouchStatement::DropPolicy { name, if_exists } => {
            if catalog.policies.contains_key(&name) {
                Ok(GovernanceChange::DropPolicy(name))
            } else if if_exists {
                Ok(GovernanceChange::Nothing)
            } else {
                Err(SqlError::new("42704", format!("policy \"{name}\" does not exist")))
            }
        }
        other => {
            let role = match &other {
                VouchStatement::AddSigningKey { role, .. }
                | VouchStatement::DropSigningKey { role, .. }
                | VouchStatement::RequireSignature { role, .. } => role.clone(),
                _ => unreachable!("policies are handled above"),
            };
            let Some(mut user) = catalog.users.get(&role).cloned() else {
                return Err(SqlError::new("42704", format!("role \"{role}\" does not exist")));
            };
            match other {
                VouchStatement::AddSigningKey { pem, .. } => {
                    let key = crate::sql::signature::parse_public_key(&pem)?;
                    let pem = crate::sql::signature::public_key_pem(&key);
                    if user.signing_keys.contains(&pem) {
                        return Err(SqlError::new("42710", format!("role \"{role}\" already has this signing key")));
                    }
                    user.signing_keys.push(pem);
                }
                VouchStatement::DropSigningKey { key, .. } => {
                    let before = user.signing_keys.len();
                    let wanted = crate::sql::signature::parse_public_key(&key).ok().map(|k| crate::sql::signature::public_key_pem(&k));
                    user.signing_keys.retain(|k| {
                        Some(k) != wanted.as_ref() && crate::sql::signature::fingerprint_of_pem(k).is_none_or(|f| f != key.trim())
                    });
                    if user.signing_keys.len() == before {
                        return Err(SqlError::new("42704", format!("role \"{role}\" has no such signing key")));
                    }
                }
                VouchStatement::RequireSignature { on, .. } => user.require_signature = on,
                _ => unreachable!("signing-key statements only"),
            }
            Ok(GovernanceChange::Role(user))
        }
    }
}

/// The policies in force: for `pg_catalog`-style listing (`vouch_policies`).
pub(crate) fn policy_rows(policies: &BTreeMap<String, PolicyDef>) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for p in policies.values() {
        for (i, r) in p.rules.iter().enumerate() {
            rows.push(vec![
                Value::Text(p.name.clone()),
                Value::Text(p.role.clone()),
                Value::Text(p.rule_id(i)),
                Value::Text(r.template.clone()),
                r.max_rows.map_or(Value::Null, |n| Value::Int(n as i64)),
            ]);
        }
    }
    rows
}
