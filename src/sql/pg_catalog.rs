//! A read-only emulation of the parts of `pg_catalog` that psql's `\dt`, `\di`, `\dn`, `\l` and `\du`
//! read, built from vouchdb's own catalog at plan time. Object ids are vouchdb's table and index ids;
//! a table's primary-key index gets the table id plus 2^30.

use super::catalog::Catalog;
use super::error::SqlResult;
use super::value::{DataType, Value};

const NAMESPACE_PUBLIC: i64 = 2200;
const NAMESPACE_PG_CATALOG: i64 = 11;
const NAMESPACE_INFORMATION_SCHEMA: i64 = 13_000;
const AM_HEAP: i64 = 2;
const AM_BTREE: i64 = 403;
const PKEY_OID_OFFSET: i64 = 1 << 30;
/// The owner every object reports (the first superuser).
pub const OWNER_OID: i64 = 10;

/// A virtual table: column names and types, and its rows.
pub type Virtual = (Vec<(&'static str, DataType)>, Vec<Vec<Value>>);

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

/// The rows of `pg_catalog.<name>`, or None if vouchdb does not emulate that table.
pub fn table(name: &str, catalog: &Catalog) -> SqlResult<Option<Virtual>> {
    use DataType::{Bool, Int4, Int8, Text};
    Ok(Some(match name {
        "pg_namespace" => (
            vec![("oid", Int8), ("nspname", Text), ("nspowner", Int8), ("nspacl", Text)],
            [(NAMESPACE_PG_CATALOG, "pg_catalog"), (NAMESPACE_PUBLIC, "public"), (NAMESPACE_INFORMATION_SCHEMA, "information_schema")]
                .into_iter()
                .map(|(oid, n)| vec![Value::Int(oid), text(n), Value::Int(OWNER_OID), Value::Null])
                .collect(),
        ),
        "pg_am" => (
            vec![("oid", Int8), ("amname", Text), ("amtype", Text)],
            vec![vec![Value::Int(AM_HEAP), text("heap"), text("t")], vec![Value::Int(AM_BTREE), text("btree"), text("i")]],
        ),
        "pg_class" => {
            let mut rows = Vec::new();
            for t in catalog.tables.values() {
                let class = |oid: i64, name: &str, kind: &str, am: i64, has_index: bool| {
                    vec![
                        Value::Int(oid),
                        text(name),
                        Value::Int(NAMESPACE_PUBLIC),
                        text(kind),
                        Value::Int(OWNER_OID),
                        Value::Int(am),
                        Value::Bool(has_index),
                        Value::Int(0),
                        text("p"),
                        Value::Bool(false),
                        Value::Int(t.columns.len() as i64),
                    ]
                };
                rows.push(class(t.id as i64, &t.name, "r", AM_HEAP, true));
                rows.push(class(t.id as i64 + PKEY_OID_OFFSET, &format!("{}_pkey", t.name), "i", AM_BTREE, false));
                for i in &t.indexes {
                    rows.push(class(i.id as i64, &i.name, "i", AM_BTREE, false));
                }
            }
            (
                vec![
                    ("oid", Int8),
                    ("relname", Text),
                    ("relnamespace", Int8),
                    ("relkind", Text),
                    ("relowner", Int8),
                    ("relam", Int8),
                    ("relhasindex", Bool),
                    ("relchecks", Int4),
                    ("relpersistence", Text),
                    ("relispartition", Bool),
                    ("relnatts", Int4),
                ],
                rows,
            )
        }
        "pg_index" => {
            let mut rows = Vec::new();
            for t in catalog.tables.values() {
                rows.push(vec![Value::Int(t.id as i64 + PKEY_OID_OFFSET), Value::Int(t.id as i64), Value::Bool(true), Value::Bool(true)]);
                for i in &t.indexes {
                    rows.push(vec![Value::Int(i.id as i64), Value::Int(t.id as i64), Value::Bool(i.unique), Value::Bool(false)]);
                }
            }
            (vec![("indexrelid", Int8), ("indrelid", Int8), ("indisunique", Bool), ("indisprimary", Bool)], rows)
        }
        "pg_database" => (
            vec![
                ("oid", Int8),
                ("datname", Text),
                ("datdba", Int8),
                ("encoding", Int4),
                ("datcollate", Text),
                ("datctype", Text),
                ("daticulocale", Text),
                ("datlocprovider", Text),
                ("datacl", Text),
            ],
            vec![vec![
                Value::Int(16_384),
                text("vouchdb"),
                Value::Int(OWNER_OID),
                Value::Int(6),
                text("C"),
                text("C"),
                Value::Null,
                text("c"),
                Value::Null,
            ]],
        ),
        "pg_roles" | "pg_user" => {
            let rows = catalog
                .users
                .values()
                .enumerate()
                .map(|(i, u)| {
                    vec![
                        Value::Int(if u.name == "admin" { OWNER_OID } else { 16_000 + i as i64 }),
                        text(&u.name),
                        Value::Bool(u.superuser),
                        Value::Bool(true),
                        Value::Bool(u.superuser),
                        Value::Bool(u.superuser),
                        Value::Bool(true),
                        Value::Int(-1),
                        Value::Null,
                        Value::Bool(false),
                        Value::Bool(false),
                    ]
                })
                .collect();
            (
                vec![
                    ("oid", Int8),
                    ("rolname", Text),
                    ("rolsuper", Bool),
                    ("rolinherit", Bool),
                    ("rolcreaterole", Bool),
                    ("rolcreatedb", Bool),
                    ("rolcanlogin", Bool),
                    ("rolconnlimit", Int4),
                    ("rolvaliduntil", DataType::Timestamptz),
                    ("rolreplication", Bool),
                    ("rolbypassrls", Bool),
                ],
                rows,
            )
        }
        "pg_auth_members" => (vec![("roleid", Int8), ("member", Int8), ("grantor", Int8), ("admin_option", Bool)], vec![]),
        _ => return Ok(None),
    }))
}

/// The name of the role with this oid (for `pg_get_userbyid`).
pub fn user_by_id(catalog: &Catalog, oid: i64) -> Option<String> {
    if oid == OWNER_OID {
        return Some("admin".into());
    }
    catalog.users.values().enumerate().find(|(i, _)| 16_000 + *i as i64 == oid).map(|(_, u)| u.name.clone())
}

fn udt_name(t: DataType) -> &'static str {
    match t {
        DataType::Bool => "bool",
        DataType::Int2 => "int2",
        DataType::Int4 => "int4",
        DataType::Int8 => "int8",
        DataType::Float4 => "float4",
        DataType::Float8 => "float8",
        DataType::Numeric => "numeric",
        DataType::Text => "text",
        DataType::Varchar(_) => "varchar",
        DataType::Bytea => "bytea",
        DataType::Timestamp => "timestamp",
        DataType::Timestamptz => "timestamptz",
        DataType::Date => "date",
        DataType::Uuid => "uuid",
        DataType::Jsonb => "jsonb",
    }
}

/// The rows of `information_schema.<name>` (schemata, tables, columns), or None.
pub fn information_schema(name: &str, catalog: &Catalog) -> SqlResult<Option<Virtual>> {
    use DataType::{Int4, Text};
    Ok(Some(match name {
        "schemata" => (
            vec![("catalog_name", Text), ("schema_name", Text), ("schema_owner", Text)],
            ["pg_catalog", "public", "information_schema"].iter().map(|s| vec![text("vouchdb"), text(s), text("admin")]).collect(),
        ),
        "tables" => (
            vec![("table_catalog", Text), ("table_schema", Text), ("table_name", Text), ("table_type", Text)],
            catalog.tables.values().map(|t| vec![text("vouchdb"), text("public"), text(&t.name), text("BASE TABLE")]).collect(),
        ),
        "columns" => {
            let mut rows = Vec::new();
            for t in catalog.tables.values() {
                for (i, c) in t.columns.iter().enumerate() {
                    let data_type = match c.ty {
                        DataType::Varchar(_) => "character varying".to_string(),
                        ty => ty.name(),
                    };
                    let max_len = match c.ty {
                        DataType::Varchar(Some(n)) => Value::Int(n as i64),
                        _ => Value::Null,
                    };
                    rows.push(vec![
                        text("vouchdb"),
                        text("public"),
                        text(&t.name),
                        text(&c.name),
                        Value::Int(i as i64 + 1),
                        c.default.as_deref().map(text).unwrap_or(Value::Null),
                        text(if c.not_null { "NO" } else { "YES" }),
                        text(&data_type),
                        max_len,
                        text(udt_name(c.ty)),
                    ]);
                }
            }
            (
                vec![
                    ("table_catalog", Text),
                    ("table_schema", Text),
                    ("table_name", Text),
                    ("column_name", Text),
                    ("ordinal_position", Int4),
                    ("column_default", Text),
                    ("is_nullable", Text),
                    ("data_type", Text),
                    ("character_maximum_length", Int4),
                    ("udt_name", Text),
                ],
                rows,
            )
        }
        _ => return Ok(None),
    }))
}
