//! Secondary indexes. An index entry is derived data written in the same batch as the transaction that
//! changes the row: key `index id ‖ index values ‖ escaped primary key` (the ledger appends the tx),
//! value `1 ‖ primary key` while the row has these values, `0 ‖ primary key` once it no longer has.
//! Readers take the newest version at or before their snapshot and re-check every row they fetch, so an
//! index can only narrow a scan, never change a result.

use super::catalog::{IndexDef, TableDef};
use super::error::{SqlError, SqlResult};
use super::value::{encode_key, Value};

/// Order-preserving encoding of index values, NULL included (it sorts first).
pub fn encode_values(values: &[Value]) -> SqlResult<Vec<u8>> {
    let mut out = Vec::new();
    for v in values {
        if v.is_null() {
            out.push(0);
        } else {
            out.extend(encode_key(std::slice::from_ref(v))?);
        }
    }
    Ok(out)
}

fn escape(pk: &[u8], out: &mut Vec<u8>) {
    for &b in pk {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 1]);
}

/// The values of a row for an index.
pub fn values_of(index: &IndexDef, row: &[Value]) -> Vec<Value> {
    index.columns.iter().map(|&c| row.get(c).cloned().unwrap_or(Value::Null)).collect()
}

fn entry(index: &IndexDef, values: &[Value], pk: &[u8], live: bool) -> SqlResult<(Vec<u8>, Vec<u8>)> {
    let mut key = index.id.to_be_bytes().to_vec();
    key.extend(encode_values(values)?);
    escape(pk, &mut key);
    let mut value = vec![live as u8];
    value.extend_from_slice(pk);
    Ok((key, value))
}

/// The index entries a change of one row (old → new; None = absent) needs.
pub fn maintain(table: &TableDef, pk: &[u8], old: Option<&[Value]>, new: Option<&[Value]>) -> SqlResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for index in &table.indexes {
        let ov = old.map(|r| values_of(index, r));
        let nv = new.map(|r| values_of(index, r));
        if ov == nv {
            continue;
        }
        if let Some(ov) = &ov {
            out.push(entry(index, ov, pk, false)?);
        }
        if let Some(nv) = &nv {
            out.push(entry(index, nv, pk, true)?);
        }
    }
    Ok(out)
}

/// Key range `[lower, upper)` of the entries whose leading values equal `eq`, and, if given, whose next
/// value lies between `lo` and `hi` (inclusive; the caller's filter decides strictness).
pub fn range(index: &IndexDef, eq: &[Value], lo: Option<&Value>, hi: Option<&Value>) -> SqlResult<(Vec<u8>, Vec<u8>)> {
    let mut prefix = index.id.to_be_bytes().to_vec();
    prefix.extend(encode_values(eq)?);
    let mut lower = prefix.clone();
    if let Some(lo) = lo {
        lower.extend(encode_values(std::slice::from_ref(lo))?);
    } else if eq.len() < index.columns.len() {
        // Skip NULLs of the next column: a comparison never matches them.
        lower.push(1);
    }
    let mut upper = prefix;
    if let Some(hi) = hi {
        upper.extend(encode_values(std::slice::from_ref(hi))?);
    }
    upper.push(0xFF);
    Ok((lower, upper))
}

/// Primary keys of the live entries returned by a scan.
pub fn live_keys(entries: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<Vec<u8>> {
    entries.into_iter().filter(|(_, v)| v.first() == Some(&1)).map(|(_, v)| v[1..].to_vec()).collect()
}

pub fn unique_violation(table: &TableDef, index: &IndexDef, values: &[Value]) -> SqlError {
    let names: Vec<&str> = index.columns.iter().map(|&c| table.columns[c].name.as_str()).collect();
    let vals: Vec<String> =
        values.iter().zip(&index.columns).map(|(v, &c)| v.to_text(table.columns[c].ty).unwrap_or_else(|| "NULL".into())).collect();
    SqlError::new("23505", format!("duplicate key value violates unique constraint \"{}\"", index.name)).on_constraint(
        &table.name,
        &index.name,
        Some(format!("Key ({})=({}) already exists.", names.join(", "), vals.join(", "))),
    )
}
