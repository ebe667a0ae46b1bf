//! SQL over the ledger: parsing (sqlparser, PostgreSQL dialect), the catalog, expressions, and the engine
//! that turns statements into ledger transactions.

pub mod catalog;
pub mod copy;
pub mod engine;
pub mod error;
pub mod expr;
pub mod index;
pub mod locks;
pub mod pg_catalog;
pub mod policy;
pub mod provenance;
pub mod signature;
pub mod value;

pub use engine::{Column, Engine, Outcome, Session, Shape};
pub use error::{SqlError, SqlResult};
pub use value::{DataType, Value};

use sqlparser::ast::Statement;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// Parse a query string into statements with the text of each (for provenance and errors).
pub fn parse(sql: &str) -> SqlResult<Vec<(Statement, String)>> {
    // sqlparser has no ALTER SEQUENCE: such strings are parsed one statement at a time.
    // Neither has sqlparser's PostgreSQL VACUUM/ANALYZE all of PostgreSQL's forms (`vacuum analyze t`,
    // as pgbench sends): both are no-ops here, parsed one statement at a time.
    let upper = sql.to_ascii_uppercase();
    // Nor has it `SET CONSTRAINTS {ALL | name, …} {IMMEDIATE | DEFERRED}` (Django sends it).
    if (upper.contains("ALTER") && upper.contains("SEQUENCE"))
        || upper.contains("VACUUM")
        || upper.contains("ANALYZE")
        || upper.contains("CONSTRAINTS")
        || upper.contains("POLICY")
        || upper.contains("SIGNING")
        || upper.contains("SIGNATURE")
    {
        let texts = split_statements(sql);
        // Each piece is tried once (a policy statement's templates are parsed in the trying).
        let special: Vec<Option<SqlResult<Statement>>> = texts.iter().map(|t| parse_special(t)).collect();
        if special.iter().any(Option::is_some) {
            let mut out = Vec::new();
            for (t, sp) in texts.into_iter().zip(special) {
                match sp {
                    Some(s) => out.push((s?, t)),
                    None => out.extend(parse(&t)?),
                }
            }
            return Ok(out);
        }
    }
    let rewritten = rewrite_as_of(sql)?;
    let rewritten = match rewrite_alter_user(rewritten.as_deref().unwrap_or(sql)) {
        Some(r) => Some(r),
        None => rewritten,
    };
    let rewritten = match rewrite_copy_options(rewritten.as_deref().unwrap_or(sql)) {
        Some(r) => Some(r),
        None => rewritten,
    };
    let stmts =
        Parser::parse_sql(&PostgreSqlDialect {}, rewritten.as_deref().unwrap_or(sql)).map_err(|e| SqlError::syntax(parser_message(&e)))?;
    let texts = split_statements(sql);
    Ok(stmts
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            let text = texts.get(i).cloned().unwrap_or_else(|| s.to_string());
            // `UPSERT INTO` was parsed as INSERT: mark it on the statement (SQLite's `OR REPLACE` slot).
            if let Statement::Insert(ins) = &mut s {
                if text.get(..6).is_some_and(|w| w.eq_ignore_ascii_case("upsert")) {
                    ins.or = Some(sqlparser::ast::SqliteOnConflict::Replace);
                }
            }
            (s, text)
        })
        .collect())
}

/// A statement sqlparser cannot parse as PostgreSQL writes it: ALTER SEQUENCE, VACUUM, ANALYZE.
fn parse_special(text: &str) -> Option<SqlResult<Statement>> {
    if let Some(s) = policy::parse_vouch_statement(text) {
        return Some(s);
    }
    let first = text.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
    match first.as_str() {
        "vacuum" | "analyze" | "analyse" => {
            // A no-op: the tables it names are not looked up.
            let word = if first == "vacuum" { "VACUUM" } else { "ANALYZE" };
            Some(
                Parser::parse_sql(&PostgreSqlDialect {}, word)
                    .map_err(|e| SqlError::syntax(parser_message(&e)))
                    .and_then(|mut v| v.pop().ok_or_else(|| SqlError::syntax(format!("{word} could not be parsed")))),
            )
        }
        "set" => parse_set_constraints(text),
        _ => parse_alter_sequence(text),
    }
}

/// `SET CONSTRAINTS {ALL | name, …} {IMMEDIATE | DEFERRED}`: every constraint is checked at the end of
/// each statement (docs/SQL.md), so it changes nothing; it is kept as the session setting
/// `vouch.set_constraints` (a plain SET), or None if `text` is not one.
fn parse_set_constraints(text: &str) -> Option<SqlResult<Statement>> {
    let words: Vec<String> = text.trim().trim_end_matches(';').split_whitespace().map(|w| w.to_ascii_lowercase()).collect();
    if words.len() < 2 || words[1] != "constraints" {
        return None;
    }
    let ok = words.len() >= 4 && matches!(words.last().map(String::as_str), Some("immediate" | "deferred"));
    if !ok {
        return Some(Err(SqlError::syntax("SET CONSTRAINTS takes ALL or constraint names, then IMMEDIATE or DEFERRED")));
    }
    let value = words[2..].join(" ").replace('\'', "''");
    Some(
        Parser::parse_sql(&PostgreSqlDialect {}, &format!("SET vouch.set_constraints = '{value}'"))
            .map_err(|e| SqlError::syntax(parser_message(&e)))
            .and_then(|mut v| v.pop().ok_or_else(|| SqlError::syntax("SET CONSTRAINTS could not be parsed"))),
    )
}

/// `ALTER SEQUENCE [IF EXISTS] name option…`, or None if `text` is not one. It is returned as a
/// `CREATE TEMPORARY SEQUENCE` (vouchdb has no temporary sequences, so `temporary` marks ALTER and
/// `if_not_exists` carries IF EXISTS), with `RESTART [[WITH] n]` as the marker type option
/// `engine::sequence::RESTART_MARKER`.
fn parse_alter_sequence(text: &str) -> Option<SqlResult<Statement>> {
    use sqlparser::ast::{DataType, Ident, ObjectName, SequenceOptions as O, TypeModifier};
    use sqlparser::keywords::Keyword as K;
    use sqlparser::tokenizer::Token;
    let mut p = Parser::new(&PostgreSqlDialect {}).try_with_sql(text).ok()?;
    if !p.parse_keywords(&[K::ALTER, K::SEQUENCE]) {
        return None;
    }
    let parsed = (|| -> Result<Statement, sqlparser::parser::ParserError> {
        let if_exists = p.parse_keywords(&[K::IF, K::EXISTS]);
        let name = p.parse_object_name(false)?;
        let mut opts = Vec::new();
        loop {
            let o = if p.parse_keyword(K::RESTART) {
                let with = p.parse_keyword(K::WITH);
                let n =
                    if with || matches!(p.peek_token().token, Token::Number(..) | Token::Minus) { Some(p.parse_number()?) } else { None };
                let mods = n.map(|n| vec![TypeModifier::Number(n.to_string().replace(' ', ""), false)]).unwrap_or_default();
                O::DataType(DataType::Custom(ObjectName::from(vec![Ident::new(engine::sequence::RESTART_MARKER)]), mods))
            } else if p.parse_keyword(K::INCREMENT) {
                let by = p.parse_keyword(K::BY);
                O::IncrementBy(p.parse_number()?, by)
            } else if p.parse_keyword(K::MINVALUE) {
                O::MinValue(Some(p.parse_number()?))
            } else if p.parse_keywords(&[K::NO, K::MINVALUE]) {
                O::MinValue(None)
            } else if p.parse_keyword(K::MAXVALUE) {
                O::MaxValue(Some(p.parse_number()?))
            } else if p.parse_keywords(&[K::NO, K::MAXVALUE]) {
                O::MaxValue(None)
            } else if p.parse_keyword(K::START) {
                let with = p.parse_keyword(K::WITH);
                O::StartWith(p.parse_number()?, with)
            } else if p.parse_keyword(K::CACHE) {
                O::Cache(p.parse_number()?)
            } else if p.parse_keywords(&[K::NO, K::CYCLE]) {
                O::Cycle(true)
            } else if p.parse_keyword(K::CYCLE) {
                O::Cycle(false)
            } else if p.parse_keyword(K::AS) {
                O::DataType(p.parse_data_type()?)
            } else if p.parse_keywords(&[K::OWNED, K::BY]) {
                let owner = p.parse_object_name(false)?;
                let none = owner.to_string().eq_ignore_ascii_case("none");
                O::OwnedBy((!none).then_some(owner))
            } else {
                break;
            };
            opts.push(o);
        }
        if p.peek_token().token != Token::EOF {
            return p.expected("an ALTER SEQUENCE option", p.peek_token());
        }
        Ok(Statement::CreateSequence { temporary: true, if_not_exists: if_exists, name, sequence_options: opts })
    })();
    Some(parsed.map_err(|e| SqlError::syntax(parser_message(&e))))
}

fn parser_message(e: &sqlparser::parser::ParserError) -> String {
    let m = e.to_string();
    let m = m.trim_start_matches("sql parser error: ");
    format!("syntax error: {m}")
}

/// Marker arguments that carry a time-travel clause through the parser as table-function arguments.
pub const AS_OF_TX: &str = "__vouch_as_of_tx";
pub const AS_OF_TIMESTAMP: &str = "__vouch_as_of_timestamp";

/// `t AS OF TX n` and `t AS OF TIMESTAMP '…'` are vouchdb syntax that PostgreSQL's grammar reads as an
/// alias. Rewrite them, at the token level, into `t('__vouch_as_of_tx', n)`, which the parser keeps as
/// table arguments and the planner turns back into a snapshot. Returns None when there is nothing to do.
/// COPY options sqlparser does not take as PostgreSQL writes them: `FORCE_QUOTE *` and legacy
/// `FORCE QUOTE *` (all columns) become the column list `("*")`, which `copy::CopyOptions` reads as
/// "all columns"; the booleans `ON`/`OFF`/`1`/`0` of `FREEZE` and `HEADER` (pgbench sends
/// `FREEZE ON`) become `TRUE`/`FALSE`.
fn rewrite_copy_options(sql: &str) -> Option<String> {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let upper = sql.to_ascii_uppercase();
    if !upper.contains("COPY") || !(upper.contains("FORCE") && sql.contains('*') || upper.contains("FREEZE") || upper.contains("HEADER")) {
        return None;
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let word = |t: &Token, w: &str| matches!(t, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w));
    let significant: Vec<usize> = (0..tokens.len()).filter(|&i| !matches!(tokens[i], Token::Whitespace(_))).collect();
    let mut replace: Vec<(usize, &str)> = Vec::new();
    for (n, &i) in significant.iter().enumerate() {
        if n == 0 {
            continue;
        }
        if word(&tokens[significant[n - 1]], "freeze") || word(&tokens[significant[n - 1]], "header") {
            let t = &tokens[i];
            if word(t, "on") || matches!(t, Token::Number(v, _) if v == "1") {
                replace.push((i, "TRUE"));
            } else if word(t, "off") || matches!(t, Token::Number(v, _) if v == "0") {
                replace.push((i, "FALSE"));
            }
            continue;
        }
        if tokens[i] != Token::Mul {
            continue;
        }
        let prev = significant[n - 1];
        if word(&tokens[prev], "force_quote") {
            replace.push((i, "(\"*\")"));
        } else if n >= 2 && word(&tokens[prev], "quote") && word(&tokens[significant[n - 2]], "force") {
            replace.push((i, "\"*\""));
        }
    }
    if replace.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(sql.len() + 8);
    for (i, t) in tokens.iter().enumerate() {
        match replace.iter().find(|(at, _)| *at == i) {
            Some((_, text)) => out.push_str(text),
            None => out.push_str(&t.to_string()),
        }
    }
    Some(out)
}

fn rewrite_as_of(sql: &str) -> SqlResult<Option<String>> {
    use sqlparser::tokenizer::{Token, Tokenizer};
    if !sql.to_ascii_uppercase().contains("OF") {
        return Ok(None);
    }
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else { return Ok(None) };
    let word = |t: &Token, w: &str| matches!(t, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w));
    let significant: Vec<usize> = (0..tokens.len()).filter(|&i| !matches!(tokens[i], Token::Whitespace(_))).collect();
    let mut replace: Vec<(usize, usize, String)> = Vec::new();
    for w in significant.windows(4) {
        let [a, o, kind, v] = [w[0], w[1], w[2], w[3]];
        if !(word(&tokens[a], "as") && word(&tokens[o], "of")) {
            continue;
        }
        let marker = if word(&tokens[kind], "tx") {
            AS_OF_TX
        } else if word(&tokens[kind], "timestamp") {
            AS_OF_TIMESTAMP
        } else {
            continue;
        };
        if !matches!(tokens[v], Token::Number(..) | Token::SingleQuotedString(_) | Token::Placeholder(_)) {
            return Err(SqlError::syntax("AS OF TX and AS OF TIMESTAMP take a literal or a parameter"));
        }
        replace.push((a, v, format!("('{marker}', {})", tokens[v])));
    }
    if replace.is_empty() {
        return Ok(None);
    }
    let mut out = String::with_capacity(sql.len() + 32);
    let mut i = 0;
    while i < tokens.len() {
        if let Some((_, end, text)) = replace.iter().find(|(start, _, _)| *start == i) {
            out.push_str(text);
            i = end + 1;
        } else {
            out.push_str(&tokens[i].to_string());
            i += 1;
        }
    }
    Ok(Some(out))
}

/// PostgreSQL's `CREATE USER` / `ALTER USER` are `CREATE ROLE … LOGIN` / `ALTER ROLE` (sqlparser reads
/// `CREATE USER` in another dialect's grammar): rewrite the keyword of every statement that starts so.
fn rewrite_alter_user(sql: &str) -> Option<String> {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let upper = sql.to_ascii_uppercase();
    if !upper.contains("USER") && !upper.contains("UPSERT") {
        return None;
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let word = |t: &Token, w: &str| matches!(t, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w));
    let mut out = String::with_capacity(sql.len());
    let mut at_start = true;
    let mut after_alter = false;
    let mut changed = false;
    for t in &tokens {
        if matches!(t, Token::Whitespace(_)) {
            out.push_str(&t.to_string());
            continue;
        }
        if after_alter && word(t, "user") {
            out.push_str("ROLE");
            changed = true;
        } else if at_start && word(t, "upsert") {
            out.push_str("INSERT");
            changed = true;
        } else {
            out.push_str(&t.to_string());
        }
        after_alter = at_start && (word(t, "alter") || word(t, "create"));
        at_start = matches!(t, Token::SemiColon);
    }
    changed.then_some(out)
}

/// Parse one expression (column DEFAULTs are stored as SQL text).
/// Rename an identifier (a column) everywhere it appears as a word in an expression's SQL text.
pub fn rename_ident(sql: &str, old: &str, new: &str) -> String {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else { return sql.to_string() };
    tokens
        .into_iter()
        .map(|t| match t {
            Token::Word(w) if (w.quote_style.is_none() && w.value.to_lowercase() == old) || (w.quote_style.is_some() && w.value == old) => {
                crate::sql::pg_catalog::quote_ident(new)
            }
            other => other.to_string(),
        })
        .collect()
}

/// Parse a type name (`integer`, `character varying(3)`, `int4[]`).
pub fn parse_data_type(sql: &str) -> SqlResult<sqlparser::ast::DataType> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_data_type())
        .map_err(|e| SqlError::syntax(parser_message(&e)))
}

pub fn parse_expr(sql: &str) -> SqlResult<sqlparser::ast::Expr> {
    Parser::new(&PostgreSqlDialect {}).try_with_sql(sql).and_then(|mut p| p.parse_expr()).map_err(|e| SqlError::syntax(parser_message(&e)))
}

/// Split a query string at top-level semicolons (outside quotes, dollar quotes and comments), keeping
/// the text of each non-empty statement.
pub fn split_statements(sql: &str) -> Vec<String> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => {
                let q = b[i];
                i += 1;
                while i < b.len() {
                    if b[i] == q {
                        if i + 1 < b.len() && b[i + 1] == q {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'$' => {
                if let Some(end) = sql[i + 1..].find('$') {
                    let tag = &sql[i..i + end + 2];
                    if tag[1..tag.len() - 1].chars().all(|c| c.is_alphanumeric() || c == '_') {
                        if let Some(close) = sql[i + tag.len()..].find(tag) {
                            i += tag.len() + close + tag.len() - 1;
                        }
                    }
                }
            }
            b';' => {
                let s = sql[start..i].trim();
                if !s.is_empty() {
                    out.push(s.to_string());
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let s = sql[start..].trim();
    if !s.is_empty() {
        out.push(s.to_string());
    }
    out
}
