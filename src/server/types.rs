//! SQL types on the wire: OIDs, text and binary encodings of values, binary parameter decoding.

use crate::sql::{DataType, SqlError, SqlResult, Value};
use bytes::{BufMut, BytesMut};
use pgwire::api::Type;
use pgwire::types::format::FormatOptions;
use pgwire::types::ToSqlText;
use postgres_types::{to_sql_checked, FromSql, IsNull, ToSql};
use std::error::Error;

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;
const PG_EPOCH_DAYS: i32 = 10_957;

pub fn pg_type(t: DataType) -> Type {
    match t {
        DataType::Array(_) => Type::from_oid(crate::sql::pg_catalog::type_oid(t) as u32).unwrap_or(Type::TEXT_ARRAY),
        DataType::Int2Vector => Type::INT2_VECTOR,
        DataType::Bool => Type::BOOL,
        DataType::Int2 => Type::INT2,
        DataType::Int4 => Type::INT4,
        DataType::Int8 => Type::INT8,
        DataType::Float4 => Type::FLOAT4,
        DataType::Float8 => Type::FLOAT8,
        DataType::Numeric => Type::NUMERIC,
        DataType::Text => Type::TEXT,
        DataType::Varchar(_) => Type::VARCHAR,
        DataType::Bpchar(_) => Type::BPCHAR,
        DataType::Bytea => Type::BYTEA,
        DataType::Timestamp => Type::TIMESTAMP,
        DataType::Timestamptz => Type::TIMESTAMPTZ,
        DataType::Date => Type::DATE,
        DataType::Uuid => Type::UUID,
        DataType::Jsonb => Type::JSONB,
        DataType::Oid => Type::OID,
        DataType::Name => Type::NAME,
        DataType::Char => Type::CHAR,
        DataType::Regclass => Type::REGCLASS,
        DataType::Record(_) => Type::RECORD,
    }
}

/// The SQL type of a parameter type a client named in Parse (None: let the statement infer it).
pub fn data_type(t: &Type) -> Option<DataType> {
    Some(match *t {
        Type::BOOL => DataType::Bool,
        Type::INT2 => DataType::Int2,
        Type::INT4 => DataType::Int4,
        Type::INT8 => DataType::Int8,
        Type::FLOAT4 => DataType::Float4,
        Type::FLOAT8 => DataType::Float8,
        Type::NUMERIC => DataType::Numeric,
        Type::TEXT => DataType::Text,
        Type::BPCHAR => DataType::Bpchar(None),
        Type::NAME => DataType::Name,
        Type::CHAR => DataType::Char,
        Type::OID => DataType::Oid,
        Type::VARCHAR => DataType::Varchar(None),
        Type::BYTEA => DataType::Bytea,
        Type::TIMESTAMP => DataType::Timestamp,
        Type::TIMESTAMPTZ => DataType::Timestamptz,
        Type::DATE => DataType::Date,
        Type::UUID => DataType::Uuid,
        Type::JSONB | Type::JSON => DataType::Jsonb,
        Type::REGCLASS | Type::REGTYPE | Type::REGPROC => DataType::Int8,
        ref t => match t.kind() {
            postgres_types::Kind::Array(elem) => DataType::array_of(data_type(elem)?),
            _ => return None,
        },
    })
}

/// NUMERIC's binary form as PostgreSQL writes it: base-10000 digits with no leading or trailing zero
/// digit (`10000` is one digit of weight 1), the display scale, and the sign.
fn encode_numeric(d: &rust_decimal::Decimal, out: &mut BytesMut) {
    let text = d.abs().to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let int = int.trim_start_matches('0');
    let int_pad = (4 - int.len() % 4) % 4;
    let frac_pad = (4 - frac.len() % 4) % 4;
    let digits_text = format!("{}{int}{frac}{}", "0".repeat(int_pad), "0".repeat(frac_pad));
    let mut digits: Vec<i16> =
        digits_text.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap_or("0").parse().unwrap_or(0)).collect();
    let mut weight = ((int.len() + int_pad) / 4) as i16 - 1;
    while digits.first() == Some(&0) {
        digits.remove(0);
        weight -= 1;
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    let negative = d.is_sign_negative() && !digits.is_empty();
    out.put_i16(digits.len() as i16);
    out.put_i16(weight);
    out.put_u16(if negative { 0x4000 } else { 0 });
    out.put_i16(frac.len() as i16);
    for g in digits {
        out.put_i16(g);
    }
}

/// A value with its column type, encodable in both wire formats.
#[derive(Debug)]
pub struct Cell<'a>(pub &'a Value, pub DataType);

type BoxErr = Box<dyn Error + Sync + Send>;

impl ToSqlText for Cell<'_> {
    fn to_sql_text(&self, _ty: &Type, out: &mut BytesMut, _f: &FormatOptions) -> Result<IsNull, BoxErr> {
        match self.0.to_text(self.1) {
            None => Ok(IsNull::Yes),
            Some(s) => {
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
        }
    }
}

impl ToSql for Cell<'_> {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxErr> {
        let v = match self.0 {
            Value::Null => return Ok(IsNull::Yes),
            v => v,
        };
        match (v, self.1) {
            (Value::Bool(b), _) => out.put_u8(*b as u8),
            (Value::Int(i), DataType::Int2) => out.put_i16(*i as i16),
            (Value::Int(i), DataType::Int4) => out.put_i32(*i as i32),
            (Value::Int(i), DataType::Oid) => out.put_u32(*i as u32),
            (Value::Int(i), _) => out.put_i64(*i),
            (Value::Float(f), DataType::Float4) => out.put_f32(*f as f32),
            (Value::Float(f), _) => out.put_f64(*f),
            (Value::Numeric(d), _) => encode_numeric(d, out),
            // ndigits 0, weight 0, sign NUMERIC_NAN, dscale 0.
            (Value::NumericNaN, _) => out.put_slice(&[0, 0, 0, 0, 0xC0, 0, 0, 0]),
            // A regclass is its relation's name here; its binary form is the oid, which only a value
            // that no relation has (printed as the number, as PostgreSQL does) still is.
            (Value::Text(s), DataType::Regclass) => match s.parse::<u32>() {
                Ok(oid) => out.put_u32(oid),
                Err(_) => return Err(format!("regclass value {s:?} cannot be sent in binary format: cast it to oid or text").into()),
            },
            (Value::Text(s), _) => out.put_slice(s.as_bytes()),
            (Value::Bytea(b), _) => out.put_slice(b),
            (Value::Timestamp(t) | Value::Timestamptz(t), _) => out.put_i64(t - PG_EPOCH_US),
            (Value::Date(d), _) => out.put_i32(d - PG_EPOCH_DAYS),
            (Value::Uuid(u), _) => out.put_slice(u),
            (Value::Jsonb(j), _) => {
                // Version 1, then the text PostgreSQL prints (with its spacing).
                out.put_u8(1);
                out.put_slice(crate::sql::value::jsonb_text(j).as_bytes());
            }
            // A record: the field count, then each field's type oid and length-prefixed value.
            (Value::Array(items), DataType::Record(fields)) => {
                out.put_i32(items.len() as i32);
                for (i, item) in items.iter().enumerate() {
                    let ft = fields.get(i).map_or(DataType::Text, |f| f.1);
                    out.put_u32(pg_type(ft).oid());
                    put_length_prefixed(item, ft, out)?;
                }
            }
            (Value::Array(items), ty) => {
                let elem = ty.elem().unwrap_or(DataType::Text);
                let elem_type = pg_type(elem);
                out.put_i32(if items.is_empty() { 0 } else { 1 });
                out.put_i32(items.iter().any(Value::is_null) as i32);
                out.put_u32(elem_type.oid());
                if !items.is_empty() {
                    out.put_i32(items.len() as i32);
                    out.put_i32(1);
                }
                for item in items {
                    put_length_prefixed(item, elem, out)?;
                }
            }
            (Value::Null, _) => unreachable!("handled above"),
        }
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// An array element or record field in binary form: its length (-1 for NULL), then its bytes.
fn put_length_prefixed(item: &Value, ty: DataType, out: &mut BytesMut) -> Result<(), BoxErr> {
    let len_at = out.len();
    out.put_i32(0);
    let n = match Cell(item, ty).to_sql(&pg_type(ty), out)? {
        IsNull::Yes => -1,
        IsNull::No => (out.len() - len_at - 4) as i32,
    };
    out[len_at..len_at + 4].copy_from_slice(&n.to_be_bytes());
    Ok(())
}

/// Decode a parameter sent in binary format as type `ty`.
pub fn decode_binary(b: &[u8], ty: DataType) -> SqlResult<Value> {
    let bad = || SqlError::new("22P03", format!("incorrect binary data format for a {} parameter", ty.name()));
    let fixed = |n: usize| if b.len() == n { Ok(()) } else { Err(bad()) };
    Ok(match ty {
        DataType::Bool => {
            fixed(1)?;
            Value::Bool(b[0] != 0)
        }
        DataType::Int2 => {
            fixed(2)?;
            Value::Int(i16::from_be_bytes([b[0], b[1]]) as i64)
        }
        DataType::Int4 => {
            fixed(4)?;
            Value::Int(i32::from_be_bytes(b.try_into().map_err(|_| bad())?) as i64)
        }
        DataType::Oid => {
            fixed(4)?;
            Value::Int(u32::from_be_bytes(b.try_into().map_err(|_| bad())?) as i64)
        }
        DataType::Record(_) => return Err(SqlError::unsupported("input of anonymous composite types is not implemented")),
        DataType::Name | DataType::Char | DataType::Regclass => Value::parse(super::check_utf8(b)?, ty)?,
        DataType::Int8 => {
            fixed(8)?;
            Value::Int(i64::from_be_bytes(b.try_into().map_err(|_| bad())?))
        }
        DataType::Float4 => {
            fixed(4)?;
            Value::Float(f32::from_be_bytes(b.try_into().map_err(|_| bad())?) as f64)
        }
        DataType::Float8 => {
            fixed(8)?;
            Value::Float(f64::from_be_bytes(b.try_into().map_err(|_| bad())?))
        }
        DataType::Numeric if b.len() == 8 && b[4..6] == [0xC0, 0] => Value::NumericNaN,
        DataType::Numeric => {
            // A base-10000 weight above 7 is at least 10^32, beyond Decimal's range; rust_decimal's
            // FromSql panics (instead of failing) when the weight is 7 or more above the digit count.
            let (ndigits, weight) = match b {
                [n0, n1, w0, w1, ..] => (u16::from_be_bytes([*n0, *n1]) as i32, i16::from_be_bytes([*w0, *w1]) as i32),
                _ => (0, 0),
            };
            if weight > 7 || weight - ndigits >= 7 {
                return Err(SqlError::new("22003", "value overflows numeric format"));
            }
            Value::Numeric(rust_decimal::Decimal::from_sql(&Type::NUMERIC, b).map_err(|_| bad())?)
        }
        DataType::Text | DataType::Varchar(_) | DataType::Bpchar(_) => return Value::Text(super::check_utf8(b)?.to_string()).cast(ty),
        DataType::Bytea => Value::Bytea(b.to_vec()),
        DataType::Timestamp | DataType::Timestamptz => {
            fixed(8)?;
            let t = i64::from_be_bytes(b.try_into().map_err(|_| bad())?).checked_add(PG_EPOCH_US).ok_or_else(bad)?;
            if ty == DataType::Timestamp {
                Value::Timestamp(t)
            } else {
                Value::Timestamptz(t)
            }
        }
        DataType::Date => {
            fixed(4)?;
            let d = i32::from_be_bytes(b.try_into().map_err(|_| bad())?).checked_add(PG_EPOCH_DAYS).ok_or_else(bad)?;
            if crate::sql::value::date_of_days(d).is_none() {
                return Err(SqlError::new("22008", "date out of range"));
            }
            Value::Date(d)
        }
        DataType::Uuid => Value::Uuid(b.try_into().map_err(|_| bad())?),
        DataType::Jsonb => match b.split_first() {
            Some((1, rest)) => Value::parse(std::str::from_utf8(rest).map_err(|_| bad())?, DataType::Jsonb)?,
            _ => return Err(bad()),
        },
        DataType::Array(_) | DataType::Int2Vector => {
            let elem = ty.elem().unwrap_or(DataType::Text);
            let mut r = crate::ledger::format::Reader::new(b);
            let ndim = r.u32().map_err(|_| bad())?;
            let _has_null = r.u32().map_err(|_| bad())?;
            let _elem_oid = r.u32().map_err(|_| bad())?;
            let n = match ndim {
                0 => 0,
                1 => {
                    let n = r.u32().map_err(|_| bad())? as usize;
                    let _lbound = r.u32().map_err(|_| bad())?;
                    n
                }
                _ => return Err(SqlError::unsupported("multi-dimensional arrays are not supported")),
            };
            let mut items = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let len = r.u32().map_err(|_| bad())? as i32;
                if len < 0 {
                    items.push(Value::Null);
                } else {
                    items.push(decode_binary(r.take(len as usize).map_err(|_| bad())?, elem)?);
                }
            }
            r.finish().map_err(|_| bad())?;
            Value::Array(items)
        }
    })
}
