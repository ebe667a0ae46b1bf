//! SQL errors carry their SQLSTATE; this is the one place where ledger errors get one.

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub code: &'static str,
    pub message: String,
    /// PostgreSQL's CONTEXT (the error's `where` field), e.g. the COPY input line of a bad value.
    pub context: Option<String>,
    /// DETAIL and the object the error is about (schema, table, constraint), as PostgreSQL reports a
    /// constraint violation; drivers expose them (node-postgres' `err.constraint`).
    pub fields: Option<Box<ErrorFields>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorFields {
    pub detail: Option<String>,
    pub schema: Option<String>,
    pub table: Option<String>,
    pub constraint: Option<String>,
}

pub type SqlResult<T> = Result<T, SqlError>;

impl SqlError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        SqlError { code, message: message.into(), context: None, fields: None }
    }
    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = Some(context.into());
        self
    }
    /// With PostgreSQL's DETAIL line.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.fields.get_or_insert_with(Default::default).detail = Some(detail.into());
        self
    }
    /// A violation of `constraint` on table `table` (schema public), with PostgreSQL's DETAIL.
    pub fn on_constraint(mut self, table: &str, constraint: &str, detail: Option<String>) -> Self {
        self.fields = Some(Box::new(ErrorFields {
            detail,
            schema: Some("public".into()),
            table: Some(table.into()),
            constraint: Some(constraint.into()),
        }));
        self
    }
    pub fn syntax(m: impl Into<String>) -> Self {
        Self::new("42601", m)
    }
    pub fn unsupported(m: impl Into<String>) -> Self {
        Self::new("0A000", m)
    }
    /// 25P02: a statement inside a transaction block after one of its statements failed.
    pub fn aborted_transaction() -> Self {
        Self::new("25P02", "current transaction is aborted, commands ignored until end of transaction block")
    }
    pub fn undefined_table(name: &str) -> Self {
        Self::new("42P01", format!("relation \"{name}\" does not exist"))
    }
    pub fn undefined_column(name: &str) -> Self {
        Self::new("42703", format!("column \"{name}\" does not exist"))
    }
    pub fn datatype_mismatch(m: impl Into<String>) -> Self {
        Self::new("42804", m)
    }
    pub fn invalid_text(ty: &str, text: &str) -> Self {
        Self::new("22P02", format!("invalid input syntax for type {ty}: \"{text}\""))
    }
    pub fn out_of_range(ty: &str) -> Self {
        Self::new("22003", format!("{ty} out of range"))
    }
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.code)
    }
}

impl From<Error> for SqlError {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::Storage { message, .. } if message.contains("No space") || message.contains("ENOSPC") => "53100",
            Error::Storage { .. } | Error::Io { .. } => "58030",
            Error::Corrupt { .. } => "XX001",
            Error::NewerFormat { .. } | Error::KeyFile { .. } => "XX000",
            Error::InvalidInput(_) => "22023",
            Error::NotFound(_) => "22023",
            Error::Closed(_) => "57P01",
            Error::Verify(_) | Error::Verification(_) => "XX000",
        };
        SqlError::new(code, e.to_string())
    }
}
