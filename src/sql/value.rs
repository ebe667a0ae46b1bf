//! SQL types and values: parsing and printing (PostgreSQL text format), comparison, casts, and the two
//! stored encodings: the row (an entry's value) and the order-preserving primary key (an entry's key).

use super::error::{SqlError, SqlResult};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use std::cmp::Ordering;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DataType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Varchar(Option<u32>),
    /// `character(n)` (`bpchar`): a `Text` value blank-padded to `n` characters as stored and sent;
    /// trailing blanks do not count when it is compared, measured or turned into text. `None`:
    /// `bpchar` without a length (no padding).
    Bpchar(Option<u32>),
    Bytea,
    Timestamp,
    Timestamptz,
    Date,
    Uuid,
    Jsonb,
    /// A one-dimensional array of the element type (PostgreSQL's `elem[]`). Element types are the
    /// scalar types above; `array_of` gives the `'static` element for a runtime type.
    #[serde(serialize_with = "serialize_elem", deserialize_with = "deserialize_elem")]
    Array(&'static DataType),
    /// `int2vector` (`pg_index.indkey`, `indoption`): an `int2[]` whose text form is the values
    /// separated by spaces.
    Int2Vector,
    /// `oid`: an unsigned 32-bit object identifier (an `Int` value), as catalog columns report it.
    Oid,
    /// `name`: a catalog identifier (a `Text` value of at most 63 bytes).
    Name,
    /// `"char"`: a one-byte catalog code such as `relkind` (a `Text` value).
    Char,
    /// `regclass` as `oid_expr::regclass` gives it: the relation's name (a `Text` value), described
    /// to clients as `regclass` and sent in text format (its binary form, the oid, only when the
    /// value is an oid no relation has). A relation *named* by a literal or parameter
    /// (`'t'::regclass`, `$1::regclass`) is looked up to its oid instead, so that it compares with
    /// catalog oid columns.
    Regclass,
    /// An anonymous composite value (`record`), such as a row of `information_schema._pg_expandarray`:
    /// its fields' names and types, interned by [`DataType::record`]; the value is an `Array` of
    /// the fields. Query results only: never a column of a stored table.
    #[serde(skip)]
    Record(&'static [(&'static str, DataType)]),
}

/// Every record shape made so far (few: one per distinct set of field names and types).
static RECORD_SHAPES: std::sync::Mutex<Vec<&'static [(&'static str, DataType)]>> = std::sync::Mutex::new(Vec::new());

fn serialize_elem<S: serde::Serializer>(elem: &&'static DataType, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(*elem, s)
}

fn deserialize_elem<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'static DataType, D::Error> {
    let elem: DataType = serde::Deserialize::deserialize(d)?;
    match DataType::array_of(elem) {
        DataType::Array(e) => Ok(e),
        _ => unreachable!("array_of returns an array type"),
    }
}

/// A NUMERIC's text as PostgreSQL prints it: a zero has no sign (`-0.00` is stored as written, so
/// rows keep their exact bytes, but reads as `0.00`).
fn decimal_text(d: &Decimal) -> String {
    if d.is_zero() && d.is_sign_negative() {
        let mut z = *d;
        z.set_sign_positive(true);
        z.to_string()
    } else {
        d.to_string()
    }
}

/// The scalar types arrays can hold, as `'static` values for `DataType::Array`.
static ARRAY_ELEMS: [DataType; 19] = [
    DataType::Bool,
    DataType::Int2,
    DataType::Int4,
    DataType::Int8,
    DataType::Float4,
    DataType::Float8,
    DataType::Numeric,
    DataType::Text,
    DataType::Varchar(None),
    DataType::Bpchar(None),
    DataType::Bytea,
    DataType::Timestamp,
    DataType::Timestamptz,
    DataType::Date,
    DataType::Uuid,
    DataType::Jsonb,
    DataType::Oid,
    DataType::Name,
    DataType::Char,
];

impl DataType {
    /// The record type with these fields (interned: the same fields give the same `'static` shape).
    pub fn record(fields: &[(&str, DataType)]) -> DataType {
        let mut shapes = RECORD_SHAPES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = shapes.iter().find(|s| s.len() == fields.len() && s.iter().zip(fields).all(|(a, b)| a.0 == b.0 && a.1 == b.1)) {
            return DataType::Record(s);
        }
        let shape: &'static [(&'static str, DataType)] =
            Box::leak(fields.iter().map(|(n, t)| (&*Box::leak(n.to_string().into_boxed_str()), *t)).collect::<Vec<_>>().into_boxed_slice());
        shapes.push(shape);
        DataType::Record(shape)
    }

    /// The array type with elements of `elem` (varchar lengths are dropped; arrays of arrays are
    /// one-dimensional arrays of the inner element, as PostgreSQL's `int[][]` is `int[]`).
    pub fn array_of(elem: DataType) -> DataType {
        let elem = match elem {
            DataType::Array(e) => *e,
            DataType::Varchar(_) => DataType::Varchar(None),
            DataType::Bpchar(_) => DataType::Bpchar(None),
            e => e,
        };
        DataType::Array(ARRAY_ELEMS.iter().find(|e| **e == elem).unwrap_or(&ARRAY_ELEMS[7]))
    }

    /// The element type of an array type.
    pub fn elem(&self) -> Option<DataType> {
        match self {
            DataType::Array(e) => Some(**e),
            DataType::Int2Vector => Some(DataType::Int2),
            _ => None,
        }
    }

    /// The name PostgreSQL prints for the type.
    pub fn name(&self) -> String {
        match self {
            DataType::Bool => "boolean".into(),
            DataType::Int2 => "smallint".into(),
            DataType::Int4 => "integer".into(),
            DataType::Int8 => "bigint".into(),
            DataType::Float4 => "real".into(),
            DataType::Float8 => "double precision".into(),
            DataType::Numeric => "numeric".into(),
            DataType::Text => "text".into(),
            DataType::Varchar(None) => "character varying".into(),
            DataType::Varchar(Some(n)) => format!("character varying({n})"),
            DataType::Bpchar(None) => "bpchar".into(),
            DataType::Bpchar(Some(n)) => format!("character({n})"),
            DataType::Bytea => "bytea".into(),
            DataType::Timestamp => "timestamp without time zone".into(),
            DataType::Timestamptz => "timestamp with time zone".into(),
            DataType::Date => "date".into(),
            DataType::Uuid => "uuid".into(),
            DataType::Jsonb => "jsonb".into(),
            DataType::Array(e) => format!("{}[]", e.name()),
            DataType::Int2Vector => "int2vector".into(),
            DataType::Oid => "oid".into(),
            DataType::Name => "name".into(),
            DataType::Char => "\"char\"".into(),
            DataType::Regclass => "regclass".into(),
            DataType::Record(_) => "record".into(),
        }
    }

    pub fn is_integer(&self) -> bool {
        matches!(self, DataType::Int2 | DataType::Int4 | DataType::Int8 | DataType::Oid)
    }

    pub fn is_numeric(&self) -> bool {
        self.is_integer() || matches!(self, DataType::Float4 | DataType::Float8 | DataType::Numeric)
    }

    pub fn is_text(&self) -> bool {
        matches!(self, DataType::Text | DataType::Varchar(_) | DataType::Bpchar(_) | DataType::Name | DataType::Char | DataType::Regclass)
    }

    /// Types that can be part of a primary key (they have an order-preserving encoding).
    pub fn keyable(&self) -> bool {
        !matches!(
            self,
            DataType::Float4 | DataType::Float8 | DataType::Jsonb | DataType::Array(_) | DataType::Int2Vector | DataType::Record(_)
        )
    }

    pub fn from_ast(t: &sqlparser::ast::DataType) -> SqlResult<DataType> {
        use sqlparser::ast::{CharacterLength, DataType as A, TimezoneInfo};
        Ok(match t {
            A::Boolean | A::Bool => DataType::Bool,
            A::SmallInt(_) | A::Int2(_) => DataType::Int2,
            A::Int(_) | A::Integer(_) | A::Int4(_) => DataType::Int4,
            A::BigInt(_) | A::Int8(_) => DataType::Int8,
            A::Real | A::Float4 => DataType::Float4,
            A::DoublePrecision | A::Float8 | A::Double(_) => DataType::Float8,
            A::Float(p) => match p {
                sqlparser::ast::ExactNumberInfo::Precision(n) | sqlparser::ast::ExactNumberInfo::PrecisionAndScale(n, _) if *n <= 24 => {
                    DataType::Float4
                }
                _ => DataType::Float8,
            },
            A::Numeric(_) | A::Decimal(_) | A::Dec(_) => DataType::Numeric,
            A::Text | A::String(_) => DataType::Text,
            A::Varchar(len) | A::CharacterVarying(len) => DataType::Varchar(match len {
                Some(CharacterLength::IntegerLength { length, .. }) => Some(*length as u32),
                _ => None,
            }),
            A::Bytea => DataType::Bytea,
            A::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => DataType::Timestamptz,
            A::Timestamp(_, _) => DataType::Timestamp,
            A::Date => DataType::Date,
            A::Uuid => DataType::Uuid,
            A::JSONB | A::JSON => DataType::Jsonb,
            A::Array(sqlparser::ast::ArrayElemTypeDef::SquareBracket(inner, _) | sqlparser::ast::ArrayElemTypeDef::AngleBracket(inner)) => {
                DataType::array_of(DataType::from_ast(inner)?)
            }
            // `char(n)`/`character(n)`; without a length, one character (as in PostgreSQL).
            A::Char(len) | A::Character(len) => DataType::Bpchar(Some(match len {
                Some(CharacterLength::IntegerLength { length, .. }) => *length as u32,
                _ => 1,
            })),
            A::Regclass => DataType::Int8,
            // `"char"` (quoted) is the one-byte catalog type; unquoted `char` is `character`.
            A::Custom(name, _) if name.0.len() == 1 && name.to_string() == "\"char\"" => DataType::Char,
            A::Custom(name, _) => match custom_type_name(name).as_str() {
                "timestamptz" => DataType::Timestamptz,
                "int2" => DataType::Int2,
                "int4" => DataType::Int4,
                "int8" => DataType::Int8,
                "float4" => DataType::Float4,
                "float8" => DataType::Float8,
                "bool" | "boolean" => DataType::Bool,
                "text" => DataType::Text,
                "varchar" => DataType::Varchar(None),
                "numeric" | "decimal" => DataType::Numeric,
                "bytea" => DataType::Bytea,
                "date" => DataType::Date,
                "uuid" => DataType::Uuid,
                "jsonb" | "json" => DataType::Jsonb,
                "timestamp" => DataType::Timestamp,
                "smallint" => DataType::Int2,
                "integer" | "int" => DataType::Int4,
                "bigint" => DataType::Int8,
                "real" => DataType::Float4,
                // Catalog types: `oid`, `name` and `"char"` are their own; the `reg*` types are integers.
                "oid" => DataType::Oid,
                "name" => DataType::Name,
                "regclass" | "regtype" | "regproc" | "regprocedure" | "regnamespace" | "regrole" | "xid" | "cid" => DataType::Int8,
                "char" => DataType::Bpchar(Some(1)),
                "bpchar" => DataType::Bpchar(None),
                "int2vector" => DataType::Int2Vector,
                "oidvector" => DataType::array_of(DataType::Int8),
                "serial" | "bigserial" | "smallserial" => return Err(SqlError::unsupported("SERIAL columns are not supported yet")),
                other => return Err(SqlError::new("42704", format!("type \"{other}\" does not exist"))),
            },
            other => return Err(SqlError::new("42704", format!("type \"{other}\" is not supported"))),
        })
    }
}

/// A record's text form, as PostgreSQL prints it: `(f1,f2)`, a NULL field empty, a field that is empty
/// or holds `(`, `)`, `,`, `"`, `\\` or white space in double quotes (`"` and `\\` doubled).
fn record_text(items: &[Value], ty: DataType) -> String {
    let DataType::Record(fields) = ty else { return String::new() };
    let mut out = String::from("(");
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let Some(t) = v.to_text(fields.get(i).map_or(DataType::Text, |f| f.1)) else { continue };
        if t.is_empty() || t.chars().any(|c| matches!(c, '(' | ')' | ',' | '"' | '\\') || c.is_whitespace()) {
            out.push('"');
            for c in t.chars() {
                if matches!(c, '"' | '\\') {
                    out.push(c);
                }
                out.push(c);
            }
            out.push('"');
        } else {
            out.push_str(&t);
        }
    }
    out.push(')');
    out
}

/// A type name written as an identifier, unquoted parts lower-cased and quoted ones kept, without
/// a `pg_catalog.` schema (`"pg_catalog"."int4"` is `int4`).
fn custom_type_name(name: &sqlparser::ast::ObjectName) -> String {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p.as_ident() {
            Some(i) if i.quote_style.is_some() => i.value.clone(),
            Some(i) => i.value.to_ascii_lowercase(),
            None => p.to_string().to_ascii_lowercase(),
        })
        .collect();
    match parts.as_slice() {
        [schema, t] if schema == "pg_catalog" => t.clone(),
        _ => parts.join("."),
    }
}

/// A SQL value. Integers of every width are `Int` and floats of both widths `Float`: the static type of
/// the column or expression says which, and values are range-checked when cast to it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Numeric(Decimal),
    /// NUMERIC's NaN: equal to itself and greater than every number, as in PostgreSQL.
    NumericNaN,
    Text(String),
    Bytea(Vec<u8>),
    /// Microseconds since the Unix epoch (UTC for timestamptz, wall-clock time for timestamp).
    Timestamp(i64),
    Timestamptz(i64),
    /// Days since the Unix epoch.
    Date(i32),
    Uuid([u8; 16]),
    Jsonb(serde_json::Value),
    /// A one-dimensional array (lower bound 1).
    Array(Vec<Value>),
}

const UNIX_EPOCH_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!("1970-01-01 is a date"),
};

/// The date `days` after 1970-01-01, or None beyond the dates chrono represents (about ±262,000
/// years; a binary parameter can name any i32 day).
pub(crate) fn date_of_days(days: i32) -> Option<NaiveDate> {
    UNIX_EPOCH_DATE.checked_add_signed(chrono::Duration::days(days as i64))
}

fn micros_to_naive(us: i64) -> Option<NaiveDateTime> {
    DateTime::<Utc>::from_timestamp_micros(us).map(|d| d.naive_utc())
}

pub fn format_timestamp(us: i64) -> String {
    match micros_to_naive(us) {
        Some(t) => {
            let s = t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
            let s = s.trim_end_matches('0').trim_end_matches('.');
            s.to_string()
        }
        None => "invalid".into(),
    }
}

fn parse_timestamp(s: &str, tz: bool) -> Option<i64> {
    let s = s.trim();
    if tz {
        if let Ok(d) = DateTime::parse_from_rfc3339(s) {
            return Some(d.timestamp_micros());
        }
        for f in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
            if let Ok(d) = DateTime::parse_from_str(s, f) {
                return Some(d.timestamp_micros());
            }
        }
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(d.and_utc().timestamp_micros());
        }
    }
    if !tz {
        // A time zone on a timestamp without one is ignored, as PostgreSQL does (pgjdbc sends
        // `setTimestamp` values with `+00`).
        for f in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%#z", "%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f %#z"] {
            if let Ok(d) = DateTime::parse_from_str(s, f) {
                return Some(d.naive_local().and_utc().timestamp_micros());
            }
        }
    }
    let (date, rest) = s.split_once([' ', 'T']).unwrap_or((s, ""));
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    // A date may carry a zone alone (`1999-12-31 +00`, pgjdbc's `setDate`).
    let rest = rest.trim();
    let zone_only =
        rest.is_empty() || (rest.starts_with(['+', '-']) && rest[1..].chars().all(|c| c.is_ascii_digit() || c == ':') && rest.len() > 1);
    zone_only.then(|| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp_micros())
}

fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let h: String = s.trim().trim_start_matches('{').trim_end_matches('}').chars().filter(|c| *c != '-').collect();
    let b = hex::decode(h).ok()?;
    b.try_into().ok()
}

pub fn format_uuid(u: &[u8; 16]) -> String {
    let h = hex::encode(u);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn format_float(f: f64, single: bool) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if single {
        format!("{}", f as f32)
    } else {
        format!("{f}")
    }
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as JSON, as PostgreSQL's `to_json` renders it: numbers and booleans as themselves,
    /// timestamps in ISO 8601 with a `T`, arrays as arrays, everything else as its text.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) if f.is_finite() => J::Number(json_number(&format_float(*f, false))),
            Value::Float(f) => J::String(format_float(*f, false)),
            Value::Numeric(d) => serde_json::from_str(&decimal_text(d)).unwrap_or_else(|_| J::String(decimal_text(d))),
            Value::Jsonb(j) => j.clone(),
            Value::Array(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Timestamp(us) => J::String(format_timestamp(*us).replacen(' ', "T", 1)),
            Value::Timestamptz(us) => J::String(format!("{}+00:00", format_timestamp(*us).replacen(' ', "T", 1))),
            other => J::String(other.to_text(other.natural_type()).unwrap_or_default()),
        }
    }

    /// PostgreSQL's text output for a value of static type `ty`.
    pub fn to_text(&self, ty: DataType) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(b) => if *b { "t" } else { "f" }.into(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format_float(*f, ty == DataType::Float4),
            Value::Numeric(d) => decimal_text(d),
            Value::NumericNaN => "NaN".into(),
            Value::Text(s) => s.clone(),
            Value::Bytea(b) => format!("\\x{}", hex::encode(b)),
            Value::Timestamp(us) => format_timestamp(*us),
            Value::Timestamptz(us) => format!("{}+00", format_timestamp(*us)),
            Value::Date(d) => match date_of_days(*d) {
                Some(date) => date.format("%Y-%m-%d").to_string(),
                None => "invalid".into(),
            },
            Value::Uuid(u) => format_uuid(u),
            Value::Jsonb(j) => jsonb_text(j),
            Value::Array(items) if matches!(ty, DataType::Record(_)) => record_text(items, ty),
            Value::Array(items) if ty == DataType::Int2Vector => {
                items.iter().map(|v| v.to_text(DataType::Int2).unwrap_or_default()).collect::<Vec<_>>().join(" ")
            }
            Value::Array(items) => {
                let elem = ty.elem().unwrap_or(DataType::Text);
                let mut out = String::with_capacity(2 + items.len() * 16);
                out.push('{');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    match v {
                        Value::Text(s) => array_quote_into(&mut out, s),
                        v => match v.to_text(elem) {
                            None => out.push_str("NULL"),
                            Some(s) => array_quote_into(&mut out, &s),
                        },
                    }
                }
                out.push('}');
                out
            }
        })
    }

    /// Parse PostgreSQL text input as type `ty`.
    pub fn parse(text: &str, ty: DataType) -> SqlResult<Value> {
        let bad = || SqlError::invalid_text(&ty.name(), text);
        let t = text.trim();
        let v = match ty {
            DataType::Bool => match t.to_ascii_lowercase().as_str() {
                "t" | "true" | "yes" | "y" | "on" | "1" => Value::Bool(true),
                "f" | "false" | "no" | "n" | "off" | "0" => Value::Bool(false),
                _ => return Err(bad()),
            },
            DataType::Int2 | DataType::Int4 | DataType::Int8 | DataType::Oid => {
                let i: i128 = t.parse().map_err(|_| bad())?;
                return Value::Int(
                    i64::try_from(i)
                        .map_err(|_| SqlError::new("22003", format!("value \"{t}\" is out of range for type {}", ty.name())))?,
                )
                .cast(ty);
            }
            DataType::Float4 | DataType::Float8 => Value::Float(match t.to_ascii_lowercase().as_str() {
                "nan" => f64::NAN,
                "infinity" | "inf" => f64::INFINITY,
                "-infinity" | "-inf" => f64::NEG_INFINITY,
                _ => t.parse().map_err(|_| bad())?,
            }),
            DataType::Numeric if t.trim().eq_ignore_ascii_case("nan") => Value::NumericNaN,
            DataType::Numeric => Value::Numeric(Decimal::from_str(t).or_else(|_| Decimal::from_scientific(t)).map_err(|_| bad())?),
            DataType::Text | DataType::Varchar(_) | DataType::Bpchar(_) => return Value::Text(text.to_string()).cast(ty),
            DataType::Name => {
                // Truncated to NAMEDATALEN - 1 bytes, on a character boundary, as PostgreSQL does.
                let mut end = text.len().min(63);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                Value::Text(text[..end].to_string())
            }
            DataType::Char => Value::Text(text.chars().next().map(String::from).unwrap_or_default()),
            DataType::Regclass => Value::Text(text.to_string()),
            // PostgreSQL has no input function for an anonymous record (0A000 "input of anonymous
            // composite types is not implemented").
            DataType::Record(_) => return Err(SqlError::unsupported("input of anonymous composite types is not implemented")),
            DataType::Bytea => match text.strip_prefix("\\x") {
                Some(h) => Value::Bytea(hex::decode(h).map_err(|_| bad())?),
                None => Value::Bytea(text.as_bytes().to_vec()),
            },
            DataType::Timestamp => Value::Timestamp(parse_timestamp(t, false).ok_or_else(bad)?),
            DataType::Timestamptz => Value::Timestamptz(parse_timestamp(t, true).ok_or_else(bad)?),
            DataType::Date => match NaiveDate::parse_from_str(t, "%Y-%m-%d") {
                Ok(d) => Value::Date((d - UNIX_EPOCH_DATE).num_days() as i32),
                // A date with a time or a zone (`1999-12-31 13:00:00+02`): its date part, as PostgreSQL reads it.
                Err(_) => Value::Date(parse_timestamp(t, false).ok_or_else(bad)?.div_euclid(86_400_000_000) as i32),
            },
            DataType::Uuid => Value::Uuid(parse_uuid(t).ok_or_else(bad)?),
            DataType::Jsonb => {
                let mut j = serde_json::from_str(t).map_err(|_| SqlError::new("22P02", "invalid input syntax for type json"))?;
                normalize_json_numbers(&mut j)?;
                Value::Jsonb(j)
            }
            DataType::Int2Vector => Value::Array(t.split_whitespace().map(|i| Value::parse(i, DataType::Int2)).collect::<SqlResult<_>>()?),
            DataType::Array(elem) => {
                let items = parse_array_text(t).ok_or_else(|| SqlError::new("22P02", format!("malformed array literal: \"{text}\"")))?;
                Value::Array(items.into_iter().map(|i| i.map_or(Ok(Value::Null), |s| Value::parse(&s, *elem))).collect::<SqlResult<_>>()?)
            }
        };
        Ok(v)
    }

    /// Cast to `ty`, with PostgreSQL's range checks and conversions.
    pub fn cast(self, ty: DataType) -> SqlResult<Value> {
        use DataType as T;
        let range = |i: i64, ty: DataType| -> SqlResult<Value> {
            let ok = match ty {
                T::Int2 => i16::try_from(i).is_ok(),
                T::Int4 => i32::try_from(i).is_ok(),
                T::Oid => u32::try_from(i).is_ok(),
                _ => true,
            };
            if ok {
                Ok(Value::Int(i))
            } else {
                Err(SqlError::out_of_range(&ty.name()))
            }
        };
        Ok(match (self, ty) {
            (Value::Null, _) => Value::Null,
            (Value::Int(i), T::Int2 | T::Int4 | T::Int8) => range(i, ty)?,
            // A negative int4 is the oid with the same bits, as in PostgreSQL (-1 is 4294967295).
            (Value::Int(i), T::Oid) if (i32::MIN as i64..0).contains(&i) => Value::Int(i + (1 << 32)),
            (Value::Int(i), T::Oid) => range(i, ty)?,
            (Value::Int(i), T::Float4 | T::Float8) => Value::Float(i as f64),
            (Value::Int(i), T::Numeric) => Value::Numeric(Decimal::from(i)),
            (Value::Float(f), T::Int2 | T::Int4 | T::Int8) => {
                if !f.is_finite() || f.round().abs() > 9.2e18 {
                    return Err(SqlError::out_of_range(&ty.name()));
                }
                range(f.round_ties_even() as i64, ty)?
            }
            (Value::Float(f), T::Float4 | T::Float8) => Value::Float(f),
            (Value::Float(f), T::Numeric) if f.is_nan() => Value::NumericNaN,
            (Value::NumericNaN, T::Numeric) => Value::NumericNaN,
            (Value::NumericNaN, T::Float4 | T::Float8) => Value::Float(f64::NAN),
            (Value::NumericNaN, T::Int2 | T::Int4 | T::Int8) => {
                return Err(SqlError::new("0A000", format!("cannot convert NaN to {}", ty.name())));
            }
            (Value::Float(f), T::Numeric) => Value::Numeric(Decimal::try_from(f).map_err(|_| SqlError::out_of_range("numeric"))?),
            (Value::Numeric(d), T::Int2 | T::Int4 | T::Int8) => {
                let r = d.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
                range(i64::try_from(r).map_err(|_| SqlError::out_of_range(&ty.name()))?, ty)?
            }
            (Value::Numeric(d), T::Float4 | T::Float8) => Value::Float(f64::try_from(d).unwrap_or(f64::NAN)),
            (Value::Numeric(d), T::Numeric) => Value::Numeric(d),
            (Value::Bool(b), T::Bool) => Value::Bool(b),
            (Value::Bool(b), T::Int4) => Value::Int(b as i64),
            (Value::Int(i), T::Bool) => Value::Bool(i != 0),
            (Value::Text(s), T::Text) => Value::Text(s),
            (Value::Text(s), T::Name | T::Char) => Value::parse(&s, ty)?,
            (Value::Text(s), T::Varchar(n)) => {
                if let Some(n) = n {
                    if s.chars().count() > n as usize {
                        // PostgreSQL truncates trailing spaces silently, otherwise refuses.
                        let trimmed: String = s.chars().take(n as usize).collect();
                        if s.chars().skip(n as usize).all(|c| c == ' ') {
                            return Ok(Value::Text(trimmed));
                        }
                        return Err(SqlError::new("22001", format!("value too long for type character varying({n})")));
                    }
                }
                Value::Text(s)
            }
            (Value::Text(s), T::Bpchar(None)) => Value::Text(s),
            (Value::Text(s), T::Bpchar(Some(n))) => {
                let len = s.chars().count();
                if len > n as usize {
                    // As for varchar: excess trailing spaces are cut, anything else is refused.
                    if !s.chars().skip(n as usize).all(|c| c == ' ') {
                        return Err(SqlError::new("22001", format!("value too long for type character({n})")));
                    }
                    Value::Text(s.chars().take(n as usize).collect())
                } else {
                    let mut s = s;
                    s.extend(std::iter::repeat_n(' ', n as usize - len));
                    Value::Text(s)
                }
            }
            (Value::Text(s), ty) => Value::parse(&s, ty)?,
            (v, T::Text | T::Varchar(_) | T::Bpchar(_)) => {
                let src = v.natural_type();
                Value::Text(v.to_text(src).unwrap_or_default()).cast(ty)?
            }
            (Value::Timestamp(t), T::Timestamp) => Value::Timestamp(t),
            (Value::Timestamp(t), T::Timestamptz) => Value::Timestamptz(t),
            (Value::Timestamptz(t), T::Timestamptz) => Value::Timestamptz(t),
            (Value::Timestamptz(t), T::Timestamp) => Value::Timestamp(t),
            (Value::Timestamp(t) | Value::Timestamptz(t), T::Date) => Value::Date(t.div_euclid(86_400_000_000) as i32),
            (Value::Date(d), T::Date) => Value::Date(d),
            (Value::Date(d), T::Timestamp | T::Timestamptz) => {
                let us = (d as i64).checked_mul(86_400_000_000).ok_or_else(|| SqlError::new("22008", "timestamp out of range"))?;
                if ty == T::Timestamp {
                    Value::Timestamp(us)
                } else {
                    Value::Timestamptz(us)
                }
            }
            (Value::Bytea(b), T::Bytea) => Value::Bytea(b),
            (Value::Uuid(u), T::Uuid) => Value::Uuid(u),
            (Value::Jsonb(j), T::Jsonb) => Value::Jsonb(j),
            (Value::Array(items), T::Array(elem)) => Value::Array(items.into_iter().map(|v| v.cast(*elem)).collect::<SqlResult<_>>()?),
            (Value::Array(items), T::Int2Vector) => Value::Array(items.into_iter().map(|v| v.cast(T::Int2)).collect::<SqlResult<_>>()?),
            (v, ty) => {
                return Err(SqlError::new("42846", format!("cannot cast type {} to {}", v.natural_type().name(), ty.name())));
            }
        })
    }

    /// The type a value has when nothing else says (for casts and printing of intermediate values).
    pub fn natural_type(&self) -> DataType {
        match self {
            Value::Null | Value::Text(_) => DataType::Text,
            Value::Bool(_) => DataType::Bool,
            Value::Int(_) => DataType::Int8,
            Value::Float(_) => DataType::Float8,
            Value::Numeric(_) | Value::NumericNaN => DataType::Numeric,
            Value::Bytea(_) => DataType::Bytea,
            Value::Timestamp(_) => DataType::Timestamp,
            Value::Timestamptz(_) => DataType::Timestamptz,
            Value::Date(_) => DataType::Date,
            Value::Uuid(_) => DataType::Uuid,
            Value::Jsonb(_) => DataType::Jsonb,
            Value::Array(items) => DataType::array_of(items.iter().find(|v| !v.is_null()).map_or(DataType::Text, Value::natural_type)),
        }
    }

    /// SQL comparison; `None` when either side is NULL. Numbers of different kinds compare by value.
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        use Value::*;
        Some(match (self, other) {
            (Null, _) | (_, Null) => return None,
            (Int(a), Int(b)) => a.cmp(b),
            (Float(a), Float(b)) => a.total_cmp(b),
            (Int(a), Float(b)) => (*a as f64).total_cmp(b),
            (Float(a), Int(b)) => a.total_cmp(&(*b as f64)),
            (NumericNaN, NumericNaN) => Ordering::Equal,
            (NumericNaN, Float(f)) | (Float(f), NumericNaN) if f.is_nan() => Ordering::Equal,
            (NumericNaN, Int(_) | Float(_) | Numeric(_)) => Ordering::Greater,
            (Int(_) | Float(_) | Numeric(_), NumericNaN) => Ordering::Less,
            (Numeric(a), Numeric(b)) => a.cmp(b),
            (Int(a), Numeric(b)) => Decimal::from(*a).cmp(b),
            (Numeric(a), Int(b)) => a.cmp(&Decimal::from(*b)),
            (Numeric(a), Float(b)) => f64::try_from(*a).unwrap_or(f64::NAN).total_cmp(b),
            (Float(a), Numeric(b)) => a.total_cmp(&f64::try_from(*b).unwrap_or(f64::NAN)),
            (Bool(a), Bool(b)) => a.cmp(b),
            (Text(a), Text(b)) => a.cmp(b),
            (Bytea(a), Bytea(b)) => a.cmp(b),
            (Timestamp(a) | Timestamptz(a), Timestamp(b) | Timestamptz(b)) => a.cmp(b),
            (Date(a), Date(b)) => a.cmp(b),
            (Uuid(a), Uuid(b)) => a.cmp(b),
            (Jsonb(a), Jsonb(b)) => a.to_string().cmp(&b.to_string()),
            (Array(a), Array(b)) => {
                for (x, y) in a.iter().zip(b) {
                    match x.sort_cmp(y) {
                        Ordering::Equal => {}
                        o => return Some(o),
                    }
                }
                a.len().cmp(&b.len())
            }
            (a, b) => a.natural_type().name().cmp(&b.natural_type().name()),
        })
    }

    /// Total order for ORDER BY and grouping: NULLs sort last (PostgreSQL's default for ASC).
    pub fn sort_cmp(&self, other: &Value) -> Ordering {
        match (self.is_null(), other.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => self.compare(other).unwrap_or(Ordering::Equal),
        }
    }
}

// ---- stored encodings -------------------------------------------------------------------------------

const ROW_VERSION: u8 = 1;

/// Encode a row as an entry value: version, schema version of the table, column count, then each value
/// as a tag byte and payload. Deterministic: the same row always gives the same bytes.
pub fn encode_row(schema_version: u32, row: &[Value]) -> Vec<u8> {
    let mut out = vec![ROW_VERSION];
    out.extend_from_slice(&schema_version.to_be_bytes());
    out.extend_from_slice(&(row.len() as u16).to_be_bytes());
    for v in row {
        encode_value(&mut out, v);
    }
    out
}

fn encode_value(out: &mut Vec<u8>, v: &Value) {
    {
        let put_bytes = |out: &mut Vec<u8>, tag: u8, b: &[u8]| {
            out.push(tag);
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        };
        match v {
            Value::Null => out.push(0),
            Value::Bool(b) => out.extend_from_slice(&[1, *b as u8]),
            Value::Int(i) => {
                out.push(2);
                out.extend_from_slice(&i.to_be_bytes());
            }
            Value::Float(f) => {
                out.push(3);
                out.extend_from_slice(&f.to_bits().to_be_bytes());
            }
            Value::Numeric(d) => put_bytes(out, 4, d.to_string().as_bytes()),
            Value::NumericNaN => put_bytes(out, 4, b"NaN"),
            Value::Text(s) => put_bytes(out, 5, s.as_bytes()),
            Value::Bytea(b) => put_bytes(out, 6, b),
            Value::Timestamp(t) => {
                out.push(7);
                out.extend_from_slice(&t.to_be_bytes());
            }
            Value::Timestamptz(t) => {
                out.push(8);
                out.extend_from_slice(&t.to_be_bytes());
            }
            Value::Date(d) => {
                out.push(9);
                out.extend_from_slice(&d.to_be_bytes());
            }
            Value::Uuid(u) => {
                out.push(10);
                out.extend_from_slice(u);
            }
            Value::Jsonb(j) => put_bytes(out, 11, j.to_string().as_bytes()),
            Value::Array(items) => {
                out.push(12);
                out.extend_from_slice(&(items.len() as u32).to_be_bytes());
                for i in items {
                    encode_value(out, i);
                }
            }
        }
    }
}

/// Decode a row; returns the schema version it was written under and its values. Only the bytes
/// `encode_row` writes are accepted (a row has one encoding, as entries and leaves do).
pub fn decode_row(bytes: &[u8]) -> Result<(u32, Vec<Value>), String> {
    let mut r = crate::ledger::format::Reader::new(bytes);
    let v = r.u8()?;
    if v != ROW_VERSION {
        return Err(format!("row encoding version {v} is not supported"));
    }
    let schema = r.u32()?;
    let n = u16::from_be_bytes([r.u8()?, r.u8()?]) as usize;
    let mut row = Vec::with_capacity(n);
    for _ in 0..n {
        row.push(decode_value(&mut r, 0)?);
    }
    r.finish()?;
    Ok((schema, row))
}

fn decode_value(r: &mut crate::ledger::format::Reader, depth: u32) -> Result<Value, String> {
    {
        let tag = r.u8()?;
        let utf8 = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| "text value is not UTF-8".to_string());
        Ok(match tag {
            0 => Value::Null,
            1 => match r.u8()? {
                b @ (0 | 1) => Value::Bool(b == 1),
                b => return Err(format!("boolean byte is {b}, not 0 or 1")),
            },
            2 => Value::Int(r.u64()? as i64),
            3 => Value::Float(f64::from_bits(r.u64()?)),
            // Only the text `encode_value` writes: "1.0", "01" and "+1" are one value but other bytes.
            4 => match utf8(r.bytes()?)?.as_str() {
                "NaN" => Value::NumericNaN,
                d => {
                    let mut n = Decimal::from_str(d).map_err(|e| e.to_string())?;
                    // from_str drops the sign of a zero, which `encode_value` writes ("-0.00").
                    if d.starts_with('-') {
                        n.set_sign_negative(true);
                    }
                    if n.to_string() != d {
                        return Err(format!("numeric {d:?} is not in its canonical form {n}"));
                    }
                    Value::Numeric(n)
                }
            },
            5 => Value::Text(utf8(r.bytes()?)?),
            6 => Value::Bytea(r.bytes()?.to_vec()),
            7 => Value::Timestamp(r.u64()? as i64),
            8 => Value::Timestamptz(r.u64()? as i64),
            9 => Value::Date(r.u32()? as i32),
            10 => Value::Uuid(r.hash16()?),
            11 => {
                let text = utf8(r.bytes()?)?;
                let j: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                let canonical = j.to_string();
                if canonical != text {
                    return Err("jsonb value is not in its canonical form".into());
                }
                Value::Jsonb(j)
            }
            12 if depth == 0 => {
                let n = r.u32()? as usize;
                let mut items = Vec::with_capacity(n.min(4096));
                for _ in 0..n {
                    items.push(decode_value(r, depth + 1)?);
                }
                Value::Array(items)
            }
            t => return Err(format!("unknown value tag {t}")),
        })
    }
}

/// Quote an array element's text as PostgreSQL's array output does.
/// Append an array element in PostgreSQL's array text form, quoted when it must be.
fn array_quote_into(out: &mut String, s: &str) {
    // Fast path: plain ASCII letters and digits (hex hashes, numbers, identifiers) never need quotes.
    let plain = !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    let needs = s.is_empty()
        || s.eq_ignore_ascii_case("null")
        || (!plain && s.chars().any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_whitespace()));
    if !needs {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Parse PostgreSQL's one-dimensional array text (`{a,"b c",NULL}`); None when malformed.
pub fn parse_array_text(t: &str) -> Option<Vec<Option<String>>> {
    let inner = t.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut items = Vec::new();
    let mut chars = inner.chars().peekable();
    if inner.trim().is_empty() {
        return Some(items);
    }
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut s = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => s.push(chars.next()?),
                    c => s.push(c),
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if matches!(c, '{' | '}' | '"') {
                    return None;
                }
                if c == '\\' {
                    chars.next();
                    s.push(chars.next()?);
                    continue;
                }
                s.push(c);
                chars.next();
            }
            s = s.trim_end().to_string();
            if s.is_empty() {
                return None;
            }
        }
        items.push(if !quoted && s.eq_ignore_ascii_case("null") { None } else { Some(s) });
        match chars.next() {
            None => return Some(items),
            Some(',') => {}
            Some(_) => return None,
        }
    }
}

/// jsonb's text form as PostgreSQL prints it: object keys ordered by length then bytes, `": "` and `", "`.
/// A JSON number from text that is one (serde_json keeps the digits: `arbitrary_precision`).
fn json_number(text: &str) -> serde_json::Number {
    text.parse().unwrap_or_else(|_| serde_json::Number::from(0))
}

/// jsonb stores numbers as NUMERIC: every number of `j` becomes the text PostgreSQL prints for it
/// (`1e2` is `100`, `2.50` stays `2.50`, `1.5e-1` is `0.15`, `-0` is `0`, and no digit is lost).
pub fn normalize_json_numbers(j: &mut serde_json::Value) -> SqlResult<()> {
    use serde_json::Value as J;
    match j {
        J::Number(n) => *n = json_number(&numeric_text(&n.to_string())?),
        J::Array(items) => items.iter_mut().try_for_each(normalize_json_numbers)?,
        J::Object(o) => o.values_mut().try_for_each(normalize_json_numbers)?,
        _ => {}
    }
    Ok(())
}

/// PostgreSQL's NUMERIC text for a JSON number's text: the exact value, with `max(0, decimals −
/// exponent)` decimals.
fn numeric_text(n: &str) -> SqlResult<String> {
    let overflow = || SqlError::new("22003", "value overflows numeric format");
    let (negative, n) = match n.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, n),
    };
    let (mantissa, exp) = match n.find(['e', 'E']) {
        Some(i) => (&n[..i], n[i + 1..].parse::<i64>().map_err(|_| overflow())?),
        None => (n, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let shift = exp - frac.len() as i64;
    if !(-16_383..=131_072).contains(&shift) || digits.len() > 200_000 {
        return Err(overflow());
    }
    let text = if shift >= 0 {
        let whole = format!("{digits}{}", "0".repeat(shift as usize));
        let whole = whole.trim_start_matches('0');
        if whole.is_empty() {
            "0".to_string()
        } else {
            whole.to_string()
        }
    } else {
        let scale = (-shift) as usize;
        let padded = format!("{}{digits}", "0".repeat((scale + 1).saturating_sub(digits.len())));
        let (i, f) = padded.split_at(padded.len() - scale);
        let i = i.trim_start_matches('0');
        format!("{}.{f}", if i.is_empty() { "0" } else { i })
    };
    let zero = text.bytes().all(|b| b == b'0' || b == b'.');
    Ok(if negative && !zero { format!("-{text}") } else { text })
}

pub fn jsonb_text(j: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match j {
        J::Array(a) => format!("[{}]", a.iter().map(jsonb_text).collect::<Vec<_>>().join(", ")),
        J::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
            let items: Vec<String> = keys.iter().map(|k| format!("{}: {}", J::String((*k).clone()), jsonb_text(&o[*k]))).collect();
            format!("{{{}}}", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// NUMERIC(p, s) / NUMERIC(p) of a SQL type: (precision, scale), None for unconstrained NUMERIC and
/// every other type. Precision 1 to 1000 (22023, as PostgreSQL); the scale may exceed the precision
/// (PostgreSQL 15: values below 10^(p−s)); a negative scale is not supported yet (0A000).
pub fn numeric_typmod(t: &sqlparser::ast::DataType) -> SqlResult<Option<(u32, u32)>> {
    use sqlparser::ast::{DataType as A, ExactNumberInfo as E};
    let info = match t {
        A::Numeric(i) | A::Decimal(i) | A::Dec(i) => i,
        _ => return Ok(None),
    };
    let (p, s) = match info {
        E::None => return Ok(None),
        E::Precision(p) => (*p, 0i64),
        E::PrecisionAndScale(p, s) => (*p, *s),
    };
    if !(1..=1000).contains(&p) {
        return Err(SqlError::new("22023", format!("NUMERIC precision {p} must be between 1 and 1000")));
    }
    if s < 0 {
        return Err(SqlError::unsupported("a negative NUMERIC scale is not supported yet"));
    }
    if s > 1000 {
        return Err(SqlError::new("22023", format!("NUMERIC scale {s} must be between -1000 and 1000")));
    }
    Ok(Some((p as u32, s as u32)))
}

/// A NUMERIC value as a NUMERIC(p, s) column stores it: rounded half away from zero to `s` decimals
/// (kept with exactly `s`, so 39.9 is 39.90), and 22003 unless its absolute value is below 10^(p − s).
pub fn fit_numeric(d: Decimal, p: u32, s: u32) -> SqlResult<Decimal> {
    let mut r = d.round_dp_with_strategy(s.min(28), rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    r.rescale(s.min(28));
    let room = p as i64 - s as i64;
    let limit = match room {
        0..=28 => Some(Decimal::from_i128_with_scale(10i128.pow(room as u32), 0)),
        -28..=-1 => Some(Decimal::new(1, (-room) as u32)),
        r if r < 0 => Some(Decimal::ZERO),
        _ => None,
    };
    if limit.is_some_and(|l| r.abs() >= l) {
        return Err(SqlError::new(
            "22003",
            format!("numeric field overflow: a field with precision {p}, scale {s} must round to an absolute value less than 10^{room}"),
        ));
    }
    Ok(r)
}

/// Order-preserving encoding of primary-key values: byte order of encodings equals SQL order of values.
pub fn encode_key(values: &[Value]) -> SqlResult<Vec<u8>> {
    let mut out = Vec::new();
    for v in values {
        match v {
            Value::Null => return Err(SqlError::new("23502", "primary key columns cannot be null")),
            Value::Bool(b) => out.extend_from_slice(&[1, *b as u8]),
            Value::Int(i) => {
                out.push(2);
                out.extend_from_slice(&((*i as u64) ^ (1 << 63)).to_be_bytes());
            }
            Value::Text(s) => escape_into(&mut out, 3, s.as_bytes()),
            Value::Bytea(b) => escape_into(&mut out, 4, b),
            Value::Timestamp(t) | Value::Timestamptz(t) => {
                out.push(5);
                out.extend_from_slice(&((*t as u64) ^ (1 << 63)).to_be_bytes());
            }
            Value::Date(d) => {
                out.push(6);
                out.extend_from_slice(&((*d as u32) ^ (1 << 31)).to_be_bytes());
            }
            Value::Uuid(u) => {
                out.push(7);
                out.extend_from_slice(u);
            }
            Value::Numeric(d) => {
                out.push(8);
                encode_decimal(&mut out, d);
            }
            // Above every number.
            Value::NumericNaN => out.extend_from_slice(&[8, 4]),
            other => return Err(SqlError::unsupported(format!("{} cannot be part of a primary key", other.natural_type().name()))),
        }
    }
    Ok(out)
}

/// An order-preserving, self-delimiting encoding of a decimal by value, so that numerically equal
/// values written differently (1, 1.0, 1.00) are one key: a sign class (negative 1, zero 2,
/// positive 3), then for non-zero values the decimal exponent E (value = ±0.d₁d₂… × 10^E) as a
/// biased 16-bit integer and the significant digits d+1, ending in 0; for negative values the exponent
/// and digits are inverted and the end is 0xFF, so that larger magnitudes sort first.
fn encode_decimal(out: &mut Vec<u8>, d: &Decimal) {
    if d.is_zero() {
        out.push(2);
        return;
    }
    let negative = d.is_sign_negative();
    let all = d.mantissa().unsigned_abs().to_string();
    let exponent = all.len() as i32 - d.scale() as i32;
    let digits = all.trim_end_matches('0');
    let biased = (exponent as i16 as u16) ^ 0x8000;
    out.push(if negative { 1 } else { 3 });
    out.extend_from_slice(&(if negative { !biased } else { biased }).to_be_bytes());
    for c in digits.bytes() {
        let digit = c - b'0' + 1;
        out.push(if negative { 0xFE - digit } else { digit });
    }
    out.push(if negative { 0xFF } else { 0 });
}

fn escape_into(out: &mut Vec<u8>, tag: u8, b: &[u8]) {
    out.push(tag);
    for &c in b {
        out.push(c);
        if c == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 1]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn key_encoding_preserves_order(a in any::<i64>(), b in any::<i64>(), s in ".{0,6}", t in ".{0,6}") {
            let ka = encode_key(&[Value::Int(a), Value::Text(s.clone())]).unwrap();
            let kb = encode_key(&[Value::Int(b), Value::Text(t.clone())]).unwrap();
            prop_assert_eq!(ka.cmp(&kb), (a, s.as_bytes()).cmp(&(b, t.as_bytes())));
        }

        #[test]
        fn numeric_key_encoding_preserves_order_and_equality(a in any::<i64>(), sa in 0u32..12, b in any::<i64>(), sb in 0u32..12, pad in 0u32..6) {
            let (da, db) = (Decimal::new(a, sa), Decimal::new(b, sb));
            let ka = encode_key(&[Value::Numeric(da), Value::Int(1)]).unwrap();
            let kb = encode_key(&[Value::Numeric(db), Value::Int(0)]).unwrap();
            prop_assert_eq!(ka[..ka.len() - 9].cmp(&kb[..kb.len() - 9]), da.cmp(&db));
            prop_assert_eq!(ka.cmp(&kb), da.cmp(&db).then(Ordering::Greater));
            // The same value with more trailing zeros is the same key.
            let mut padded = da;
            padded.rescale(sa + pad);
            prop_assert_eq!(encode_key(&[Value::Numeric(padded)]).unwrap(), encode_key(&[Value::Numeric(da)]).unwrap());
        }

        #[test]
        fn rows_round_trip(i in any::<i64>(), f in any::<f64>(), s in ".{0,12}", b in proptest::collection::vec(any::<u8>(), 0..12)) {
            let row = vec![Value::Null, Value::Bool(true), Value::Int(i), Value::Float(f), Value::Text(s), Value::Bytea(b), Value::Date(-3), Value::Timestamptz(i / 2)];
            let enc = encode_row(7, &row);
            let (v, back) = decode_row(&enc).unwrap();
            prop_assert_eq!(v, 7);
            prop_assert_eq!(encode_row(7, &back), enc);
        }
    }

    #[test]
    fn array_types_serialise_in_catalog_entries() {
        for t in [DataType::array_of(DataType::Text), DataType::array_of(DataType::Varchar(Some(3))), DataType::Int4] {
            let json = serde_json::to_string(&t).unwrap();
            let back: DataType = serde_json::from_str(&json).unwrap();
            assert_eq!(back, t);
        }
    }

    #[test]
    fn text_round_trips_like_postgres() {
        assert_eq!(
            Value::parse("2024-02-29 12:34:56.5", DataType::Timestamp).unwrap().to_text(DataType::Timestamp).unwrap(),
            "2024-02-29 12:34:56.5"
        );
        assert_eq!(Value::parse("1999-12-31", DataType::Date).unwrap().to_text(DataType::Date).unwrap(), "1999-12-31");
        assert_eq!(Value::parse("40000", DataType::Int2).unwrap_err().code, "22003");
        assert_eq!(Value::parse("x1", DataType::Int4).unwrap_err().code, "22P02");
        assert_eq!(Value::Text("abcd".into()).cast(DataType::Varchar(Some(3))).unwrap_err().code, "22001");
        assert_eq!(Value::Float(0.1).to_text(DataType::Float8).unwrap(), "0.1");
        assert_eq!(Value::parse("\\x00ff", DataType::Bytea).unwrap(), Value::Bytea(vec![0, 255]));
    }
}
