//! Allowlist policies (docs/PROVENANCE.md): a policy grants a role statement templates, and a role
//! with policies may only run writing statements that one of its templates admits.
//!
//! A template is SQL with `$n` placeholders. Both the template and a statement are normalised the same
//! way: parsed, every literal and placeholder replaced by the next `$k` (a *slot*), printed by the
//! parser (so whitespace, comments and keyword case normalise away) with unquoted text lowercased.
//! A statement matches a rule when the normal forms are equal and every slot the template filled
//! with a literal holds that same value in the statement (a literal, or a parameter bound to it).
//!
//! This module also parses vouchdb's own statements (`CREATE POLICY`, `DROP POLICY`, `ALTER ROLE …
//! SIGNING KEY`), which sqlparser does not know; they travel to the engine inside a
//! `Statement::CreatePolicy` whose table name is `VOUCH_MARKER` (see `vouch_statement`).

use super::error::{SqlError, SqlResult};
use crate::ledger::Entry;
use serde::{Deserialize, Serialize};
use sqlparser::ast::{self, Statement, VisitMut, VisitorMut};
use std::ops::ControlFlow;

/// System table 6: policies, keyed by policy name, value JSON `PolicyDef`.
pub const SYS_POLICIES: u32 = 6;

/// A policy: the statements `role` may run that write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDef {
    pub name: String,
    pub role: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// The template as written.
    pub template: String,
    /// Most rows one statement may affect (INSERT, UPDATE, DELETE, COPY); None: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
    /// The template's normal form, computed once (every governed statement is matched against it).
    #[serde(skip)]
    normal: NormalCache,
}

/// A lazily computed normal form; never part of a rule's identity (equal whether computed or not).
#[derive(Debug, Clone, Default)]
struct NormalCache(std::sync::OnceLock<Result<Normal, String>>);

impl PartialEq for NormalCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Rule {
    pub fn new(template: String, max_rows: Option<u64>) -> Rule {
        Rule { template, max_rows, normal: NormalCache::default() }
    }

    /// The template's normal form (parsed on first use).
    fn normal(&self) -> SqlResult<&Normal> {
        self.normal
            .0
            .get_or_init(|| normalise_template(&self.template).map_err(|e| e.message))
            .as_ref()
            .map_err(|m| SqlError::syntax(m.clone()))
    }
}

impl PolicyDef {
    pub fn entry(&self) -> Entry {
        Entry::put(SYS_POLICIES, self.name.as_bytes().to_vec(), serde_json::to_vec(self).expect("a policy always serialises"))
    }

    /// The name a statement's provenance records for rule `i` (0-based): `policy#1`, `policy#2`, ….
    pub fn rule_id(&self, i: usize) -> String {
        format!("{}#{}", self.name, i + 1)
    }
}

/// One slot of a normalised statement.
#[derive(Debug, Clone, PartialEq)]
enum Slot {
    /// A placeholder: parameter `$n` (1-based).
    Param(usize),
    /// A literal's text (None for NULL).
    Literal(Option<String>),
}

/// A statement reduced to its normal form and slots.
#[derive(Debug, Clone, PartialEq)]
pub struct Normal {
    text: String,
    slots: Vec<Slot>,
}

struct Slotter {
    slots: Vec<Slot>,
}

impl VisitorMut for Slotter {
    type Break = ();
    fn pre_visit_value(&mut self, value: &mut ast::ValueWithSpan) -> ControlFlow<()> {
        let slot = match &value.value {
            ast::Value::Placeholder(p) => match p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
                Some(n) => Slot::Param(n),
                None => Slot::Literal(Some(p.clone())),
            },
            ast::Value::Null => Slot::Literal(None),
            ast::Value::SingleQuotedString(s)
            | ast::Value::EscapedStringLiteral(s)
            | ast::Value::NationalStringLiteral(s)
            | ast::Value::DollarQuotedString(ast::DollarQuotedString { value: s, .. }) => Slot::Literal(Some(s.clone())),
            ast::Value::Number(n, _) => Slot::Literal(Some(n.to_string())),
            ast::Value::Boolean(b) => Slot::Literal(Some(if *b { "t" } else { "f" }.into())),
            other => Slot::Literal(Some(other.to_string())),
        };
        self.slots.push(slot);
        value.value = ast::Value::Placeholder(format!("${}", self.slots.len()));
        ControlFlow::Continue(())
    }
}

/// Lowercase everything outside double-quoted identifiers (literals are slots by now).
fn fold_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    for c in text.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if quoted {
            out.push(c);
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The normal form of a parsed statement.
pub fn normalise(stmt: &Statement) -> Normal {
    let mut s = stmt.clone();
    let mut v = Slotter { slots: Vec::new() };
    let _ = s.visit(&mut v);
    Normal { text: fold_case(&s.to_string()), slots: v.slots }
}

/// The normal form of a template (exactly one statement).
pub fn normalise_template(template: &str) -> SqlResult<Normal> {
    thread_local! {
        static IN_TEMPLATE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    // A template is parsed with the full parser, which tries vouchdb's own statements too: a template
    // that is itself a CREATE POLICY would parse its templates in turn, nested without bound.
    if IN_TEMPLATE.with(|t| t.replace(true)) {
        return Err(SqlError::syntax("a policy template cannot be a policy statement"));
    }
    let parsed = super::parse(template);
    IN_TEMPLATE.with(|t| t.set(false));
    let mut stmts = parsed.map_err(|e| SqlError::syntax(format!("policy template {template:?}: {}", e.message)))?;
    if stmts.len() != 1 {
        return Err(SqlError::syntax(format!("a policy template is exactly one statement, got {}: {template:?}", stmts.len())));
    }
    Ok(normalise(&stmts.remove(0).0))
}

impl Normal {
    /// Whether `stmt` (with `params`, as text) fills this template.
    pub fn admits(&self, stmt: &Normal, params: &[Option<String>]) -> bool {
        if self.text != stmt.text || self.slots.len() != stmt.slots.len() {
            return false;
        }
        self.slots.iter().zip(&stmt.slots).all(|(t, s)| match t {
            Slot::Param(_) => true,
            Slot::Literal(want) => {
                let got = match s {
                    Slot::Literal(v) => v.clone(),
                    Slot::Param(n) => match params.get(n.wrapping_sub(1)) {
                        Some(v) => v.clone(),
                        None => return false,
                    },
                };
                got == *want
            }
        })
    }
}

/// How a statement of a role fares against its policies.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// The role has no policy: table privileges apply.
    NoPolicy,
    /// Admitted by this rule (`policy#n`), with its row limit.
    Admitted {
        rule: String,
        max_rows: Option<u64>,
    },
    Refused,
}

/// Check `stmt` (its normal form) with `params` against the policies of `role` in `policies`.
pub fn admit<'a>(
    policies: impl Iterator<Item = &'a PolicyDef>,
    role: &str,
    stmt: &Normal,
    params: &[Option<String>],
) -> SqlResult<Admission> {
    let mut any = false;
    for p in policies.filter(|p| p.role == role) {
        any = true;
        for (i, r) in p.rules.iter().enumerate() {
            if r.normal()?.admits(stmt, params) {
                return Ok(Admission::Admitted { rule: p.rule_id(i), max_rows: r.max_rows });
            }
        }
    }
    Ok(if any { Admission::Refused } else { Admission::NoPolicy })
}

// ---- vouchdb's own statements --------------------------------------------------------------------

/// The table name marking a vouchdb statement carried in a `Statement::CreatePolicy`.
pub const VOUCH_MARKER: &str = "__vouchdb_statement";

/// vouchdb's own statements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum VouchStatement {
    CreatePolicy(PolicyDef),
    DropPolicy {
        name: String,
        if_exists: bool,
    },
    /// `ALTER ROLE r ADD SIGNING KEY 'pem'`.
    AddSigningKey {
        role: String,
        pem: String,
    },
    /// `ALTER ROLE r DROP SIGNING KEY 'pem or fingerprint'`.
    DropSigningKey {
        role: String,
        key: String,
    },
    /// `ALTER ROLE r REQUIRE SIGNATURE` / `ALTER ROLE r NO REQUIRE SIGNATURE`.
    RequireSignature {
        role: String,
        on: bool,
    },
}

/// The vouchdb statement a parsed statement carries, if any.
pub fn vouch_statement(stmt: &Statement) -> Option<VouchStatement> {
    let Statement::CreatePolicy(p) = stmt else { return None };
    if p.table_name.to_string() != VOUCH_MARKER {
        return None;
    }
    let Some(ast::Expr::Value(v)) = &p.using else { return None };
    let ast::Value::SingleQuotedString(json) = &v.value else { return None };
    serde_json::from_str(json).ok()
}

fn carry(v: &VouchStatement) -> Statement {
    let json = serde_json::to_string(v).expect("a vouchdb statement always serialises");
    Statement::CreatePolicy(ast::CreatePolicy {
        name: ast::Ident::new("vouchdb"),
        table_name: ast::ObjectName::from(vec![ast::Ident::new(VOUCH_MARKER)]),
        policy_type: None,
        command: None,
        to: None,
        using: Some(ast::Expr::Value(ast::Value::SingleQuotedString(json).into())),
        with_check: None,
    })
}

/// Parse `text` if it is one of vouchdb's own statements:
/// `CREATE POLICY name FOR ROLE role ALLOW 'template' [MAX ROWS n] [ALLOW …]…`,
/// `DROP POLICY [IF EXISTS] name` (without `ON table`, which is PostgreSQL's row security),
/// `ALTER ROLE role {ADD | DROP} SIGNING KEY 'pem'` and `ALTER ROLE role [NO] REQUIRE SIGNATURE`.
pub fn parse_vouch_statement(text: &str) -> Option<SqlResult<Statement>> {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, text).tokenize().ok()?;
    let tokens: Vec<Token> = tokens.into_iter().filter(|t| !matches!(t, Token::Whitespace(_) | Token::SemiColon | Token::EOF)).collect();
    let word = |i: usize| match tokens.get(i) {
        Some(Token::Word(w)) => Some(if w.quote_style.is_some() { w.value.clone() } else { w.value.to_lowercase() }),
        _ => None,
    };
    let is =
        |i: usize, w: &str| word(i).is_some_and(|x| x == w) && matches!(tokens.get(i), Some(Token::Word(t)) if t.quote_style.is_none());
    let string = |i: usize| match tokens.get(i) {
        Some(Token::SingleQuotedString(s)) => Some(s.clone()),
        Some(Token::DollarQuotedString(d)) => Some(d.value.clone()),
        _ => None,
    };
    let syntax = |m: &str| Some(Err(SqlError::syntax(m.to_string())));
    if is(0, "create") && is(1, "policy") && is(3, "for") && is(4, "role") {
        let (Some(name), Some(role)) = (word(2), word(5)) else {
            return syntax("CREATE POLICY name FOR ROLE role ALLOW 'template' [MAX ROWS n] …");
        };
        let mut rules = Vec::new();
        let mut i = 6;
        while i < tokens.len() {
            if !is(i, "allow") {
                return syntax("CREATE POLICY … FOR ROLE role: expected ALLOW 'template'");
            }
            let Some(template) = string(i + 1) else { return syntax("ALLOW takes the statement template as a string literal") };
            if let Err(e) = normalise_template(&template) {
                return Some(Err(e));
            }
            i += 2;
            let mut max_rows = None;
            if is(i, "max") && is(i + 1, "rows") {
                let Some(Token::Number(n, _)) = tokens.get(i + 2) else { return syntax("MAX ROWS takes a number") };
                let Ok(n) = n.parse::<u64>() else { return syntax("MAX ROWS takes a non-negative whole number") };
                max_rows = Some(n);
                i += 3;
            }
            rules.push(Rule::new(template, max_rows));
        }
        if rules.is_empty() {
            return syntax("CREATE POLICY … FOR ROLE role needs at least one ALLOW 'template'");
        }
        return Some(Ok(carry(&VouchStatement::CreatePolicy(PolicyDef { name, role, rules }))));
    }
    if is(0, "drop") && is(1, "policy") && !tokens.iter().any(|t| matches!(t, Token::Word(w) if w.value.eq_ignore_ascii_case("on"))) {
        let (if_exists, at) = if is(2, "if") && is(3, "exists") { (true, 4) } else { (false, 2) };
        let Some(name) = word(at).filter(|_| tokens.len() == at + 1) else { return syntax("DROP POLICY [IF EXISTS] name") };
        return Some(Ok(carry(&VouchStatement::DropPolicy { name, if_exists })));
    }
    if is(0, "alter") && (is(1, "role") || is(1, "user")) {
        let role = word(2)?;
        let rest: Vec<String> = (3..tokens.len()).map(|i| word(i).unwrap_or_default()).collect();
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        return match rest.as_slice() {
            ["add", "signing", "key", ""] => match string(6) {
                Some(pem) => Some(Ok(carry(&VouchStatement::AddSigningKey { role, pem }))),
                None => syntax("ADD SIGNING KEY takes the public key (PEM) as a string literal"),
            },
            ["drop", "signing", "key", ""] => match string(6) {
                Some(key) => Some(Ok(carry(&VouchStatement::DropSigningKey { role, key }))),
                None => syntax("DROP SIGNING KEY takes the public key (PEM) or its fingerprint as a string literal"),
            },
            ["require", "signature"] => Some(Ok(carry(&VouchStatement::RequireSignature { role, on: true }))),
            ["no", "require", "signature"] => Some(Ok(carry(&VouchStatement::RequireSignature { role, on: false }))),
            _ => None,
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(sql: &str) -> Normal {
        normalise(&super::super::parse(sql).unwrap().remove(0).0)
    }

    #[test]
    fn literals_whitespace_and_case_normalise_away() {
        let t = normalise_template("INSERT INTO payments (id, payer, amount) VALUES ($1, $2, $3)").unwrap();
        assert!(t.admits(&stmt("insert  into Payments(id,payer,amount)\n values (7, 'bob', 10.5) -- hi"), &[]));
        assert!(t.admits(&stmt("INSERT INTO payments (id, payer, amount) VALUES ($1, $2, $3)"), &[Some("1".into()), None, None]));
        // Parameters may be numbered in another order: each slot is a value of its own.
        assert!(t.admits(&stmt("INSERT INTO payments (id, payer, amount) VALUES ($3, $1, $2)"), &[None, None, None]));
        assert!(!t.admits(&stmt("INSERT INTO payments (id, payer) VALUES (1, 'x')"), &[]));
        assert!(!t.admits(&stmt("INSERT INTO payments (id, payer, amount) VALUES (1, 'x', 2), (2, 'y', 3)"), &[]));
        assert!(!t.admits(&stmt("DELETE FROM payments"), &[]));
        // A quoted identifier keeps its case.
        assert!(!t.admits(&stmt(r#"INSERT INTO "Payments" (id, payer, amount) VALUES (1, 'x', 2)"#), &[]));
    }

    #[test]
    fn literals_in_a_template_are_fixed() {
        let t = normalise_template("UPDATE invoices SET status = 'paid' WHERE id = $1").unwrap();
        assert!(t.admits(&stmt("update invoices set status = 'paid' where id = 5"), &[]));
        assert!(!t.admits(&stmt("update invoices set status = 'void' where id = 5"), &[]));
        assert!(t.admits(&stmt("update invoices set status = $2 where id = $1"), &[Some("5".into()), Some("paid".into())]));
        assert!(!t.admits(&stmt("update invoices set status = $2 where id = $1"), &[Some("5".into()), Some("void".into())]));
        assert!(!t.admits(&stmt("update invoices set status = $2 where id = $1"), &[Some("5".into()), None]));
        assert!(!t.admits(&stmt("update invoices set status = $2 where id = $1"), &[Some("5".into())]));
    }

    #[test]
    fn vouch_statements_parse() {
        let s = parse_vouch_statement(
            "CREATE POLICY app_pay FOR ROLE app ALLOW 'INSERT INTO p VALUES ($1)' MAX ROWS 1 ALLOW $$DELETE FROM p WHERE id = $1$$",
        )
        .unwrap()
        .unwrap();
        let Some(VouchStatement::CreatePolicy(p)) = vouch_statement(&s) else { panic!("not a policy: {s}") };
        assert_eq!((p.name.as_str(), p.role.as_str(), p.rules.len()), ("app_pay", "app", 2));
        assert_eq!(p.rules[0].max_rows, Some(1));
        assert_eq!(p.rules[1].template, "DELETE FROM p WHERE id = $1");
        assert!(parse_vouch_statement("CREATE POLICY x FOR ROLE app ALLOW 'not sql at all'").unwrap().is_err());
        assert!(parse_vouch_statement("CREATE POLICY x FOR ROLE app").unwrap().is_err());
        assert!(parse_vouch_statement("CREATE POLICY x ON t USING (true)").is_none());
        assert!(parse_vouch_statement("DROP POLICY x ON t").is_none());
        let d = parse_vouch_statement("drop policy if exists app_pay;").unwrap().unwrap();
        assert_eq!(vouch_statement(&d), Some(VouchStatement::DropPolicy { name: "app_pay".into(), if_exists: true }));
        let r = parse_vouch_statement("ALTER ROLE app REQUIRE SIGNATURE").unwrap().unwrap();
        assert_eq!(vouch_statement(&r), Some(VouchStatement::RequireSignature { role: "app".into(), on: true }));
        assert!(parse_vouch_statement("ALTER ROLE app PASSWORD 'x'").is_none());
    }
}
