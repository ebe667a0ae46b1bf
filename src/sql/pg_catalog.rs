//! A read-only emulation of the parts of `pg_catalog` that psql's `\dt`, `\di`, `\dn`, `\l` and `\du`
//! read, built from vouchdb's own catalog at plan time. Object ids are vouchdb's table and index ids;
//! a table's primary-key index gets the table id plus 2^30.

use super::catalog::{Catalog, ColumnDef, FkAction, IndexDef, TableDef};
use super::error::SqlResult;
use super::value::{DataType, Value};

const NAMESPACE_PUBLIC: i64 = 2200;
const NAMESPACE_PG_CATALOG: i64 = 11;
const NAMESPACE_INFORMATION_SCHEMA: i64 = 13_000;
const AM_HEAP: i64 = 2;
const PG_CLASS_OID: i64 = 1259;
const AM_BTREE: i64 = 403;
const PKEY_OID_OFFSET: i64 = 1 << 30;
/// The owner every object reports (the first superuser).
pub const OWNER_OID: i64 = 10;
/// `pg_default`'s oid, every database's tablespace.
const TABLESPACE_DEFAULT: i64 = 1663;

/// A virtual table: column names and types, and its rows.
pub type Virtual = (Vec<(&'static str, DataType)>, Vec<Vec<Value>>);

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

/// The columns of PostgreSQL 15's catalog tables whose type is `oid`, `name` or `"char"`, as
/// `(table, oid columns, name columns, "char" columns)`, space-separated (from PostgreSQL 15's
/// pg_attribute). Drivers pick decoders by these type oids (asyncpg's `"char"` typtype).
const CATALOG_COLUMN_TYPES: &[(&str, &str, &str, &str)] = &[
    ("pg_policies", "", "schemaname tablename policyname", ""),
    ("pg_replication_slots", "datoid", "slot_name plugin database", ""),
    ("pg_seclabels", "objoid classoid objnamespace", "", ""),
    ("pg_sequences", "", "schemaname sequencename sequenceowner", ""),
    ("pg_user", "usesysid", "usename", ""),
    ("pg_am", "oid", "amname", "amtype"),
    ("pg_attrdef", "oid adrelid", "", ""),
    ("pg_attribute", "attrelid atttypid attcollation", "attname", "attalign attstorage attcompression attidentity attgenerated"),
    ("pg_auth_members", "roleid member grantor", "", ""),
    (
        "pg_class",
        "oid relnamespace reltype reloftype relowner relam relfilenode reltablespace reltoastrelid relrewrite",
        "relname",
        "relpersistence relkind relreplident",
    ),
    ("pg_collation", "oid collnamespace collowner", "collname", "collprovider"),
    (
        "pg_constraint",
        "oid connamespace conrelid contypid conindid conparentid confrelid",
        "conname",
        "contype confupdtype confdeltype confmatchtype",
    ),
    ("pg_database", "oid datdba dattablespace", "datname", "datlocprovider"),
    ("pg_depend", "classid objid refclassid refobjid", "", "deptype"),
    ("pg_description", "objoid classoid", "", ""),
    ("pg_enum", "oid enumtypid", "enumlabel", ""),
    ("pg_event_trigger", "oid evtowner evtfoid", "evtname evtevent", "evtenabled"),
    ("pg_extension", "oid extowner extnamespace", "extname", ""),
    ("pg_foreign_table", "ftrelid ftserver", "", ""),
    ("pg_index", "indexrelid indrelid", "", ""),
    ("pg_indexes", "", "schemaname tablename indexname tablespace", ""),
    ("pg_inherits", "inhrelid inhparent", "", ""),
    ("pg_matviews", "", "schemaname matviewname matviewowner tablespace", ""),
    ("pg_namespace", "oid nspowner", "nspname", ""),
    ("pg_partitioned_table", "partrelid partdefid", "", "partstrat"),
    ("pg_policy", "oid polrelid", "polname", "polcmd"),
    ("pg_proc", "oid pronamespace proowner prolang provariadic prorettype", "proname", "prokind provolatile proparallel"),
    ("pg_publication", "oid pubowner", "pubname", ""),
    ("pg_publication_namespace", "oid pnpubid pnnspid", "", ""),
    ("pg_publication_rel", "oid prpubid prrelid", "", ""),
    ("pg_range", "rngtypid rngsubtype rngmultitypid rngcollation rngsubopc", "", ""),
    ("pg_rewrite", "oid ev_class", "rulename", "ev_type ev_enabled"),
    ("pg_roles", "oid", "rolname", ""),
    ("pg_sequence", "seqrelid seqtypid", "", ""),
    ("pg_shdescription", "objoid classoid", "", ""),
    ("pg_stat_activity", "datid usesysid", "datname usename", ""),
    ("pg_statistic_ext", "oid stxrelid stxnamespace stxowner", "stxname", ""),
    ("pg_tables", "", "schemaname tablename tableowner tablespace", ""),
    ("pg_tablespace", "oid spcowner", "spcname", ""),
    ("pg_trigger", "oid tgrelid tgparentid tgfoid tgconstrrelid tgconstrindid tgconstraint", "tgname tgoldtable tgnewtable", "tgenabled"),
    (
        "pg_type",
        "oid typnamespace typowner typrelid typelem typarray typbasetype typcollation",
        "typname",
        "typtype typcategory typdelim typalign typstorage",
    ),
    ("pg_views", "", "schemaname viewname viewowner", ""),
];

/// PostgreSQL 15's keywords that are not unreserved, by category (its documentation's appendix C).
const KEYWORDS: &[(&str, &str, &str)] = &[
    (
        "R",
        "reserved",
        "all analyse analyze and any array as asc asymmetric both case cast check collate column constraint create \
         current_catalog current_date current_role current_time current_timestamp current_user default deferrable desc \
         distinct do else end except false fetch for foreign from grant group having in initially intersect into lateral \
         leading limit localtime localtimestamp not null offset on only or order placing primary references returning \
         select session_user some symmetric table then to trailing true union unique user using variadic \
         when where window with",
    ),
    (
        "T",
        "reserved (can be function or type name)",
        "authorization binary collation concurrently cross current_schema freeze full ilike inner is isnull join left \
         like natural notnull outer overlaps right similar tablesample verbose",
    ),
    (
        "C",
        "unreserved (cannot be function or type name)",
        "between bigint bit boolean char character coalesce dec decimal exists extract float greatest grouping inout int \
         integer interval json_array json_arrayagg json_object json_objectagg least national nchar none normalize nullif \
         numeric out overlay position precision real row setof smallint substring time timestamp treat trim values \
         varchar xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot \
         xmlserialize xmltable",
    ),
];

/// The rows of `pg_catalog.<name>`, or None if vouchdb does not emulate that table, with the column
/// types PostgreSQL gives them.
pub fn table(name: &str, catalog: &Catalog) -> SqlResult<Option<Virtual>> {
    let Some((mut columns, rows)) = table_rows(name, catalog)? else { return Ok(None) };
    if let Some((_, oids, names, chars)) = CATALOG_COLUMN_TYPES.iter().find(|t| t.0 == name) {
        for (col, ty) in columns.iter_mut() {
            let has = |list: &str| list.split(' ').any(|c| c == *col);
            *ty = match *ty {
                DataType::Int8 | DataType::Int4 if has(oids) => DataType::Oid,
                DataType::Text if has(names) => DataType::Name,
                DataType::Text if has(chars) => DataType::Char,
                t => t,
            };
        }
    }
    Ok(Some((columns, rows)))
}

fn table_rows(name: &str, catalog: &Catalog) -> SqlResult<Option<Virtual>> {
    use DataType::{Bool, Float4, Int2, Int2Vector, Int4, Int8, Text};
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
            for t in catalog.user_tables() {
                let class = |oid: i64, name: &str, kind: &str, am: i64, has_index: bool, natts: usize| {
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
                        Value::Int(natts as i64),
                        Value::Int(0),
                        Value::Int(0),
                        Value::Int(0),
                        Value::Int(oid),
                        Value::Int(0),
                        Value::Float(-1.0),
                        Value::Bool(false),
                        Value::Bool(false),
                        Value::Bool(false),
                        Value::Bool(false),
                        Value::Bool(false),
                        Value::Bool(true),
                        text("d"),
                        Value::Bool(false),
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        // A new B-tree index has its metapage; a new table no page.
                        Value::Int((kind == "i") as i64),
                    ]
                };
                rows.push(class(t.id as i64, &t.name, "r", AM_HEAP, true, t.columns.len()));
                if let Some(r) = rows.last_mut() {
                    r[7] = Value::Int(t.checks.len() as i64);
                    // Foreign keys are triggers in PostgreSQL; psql looks for them only then.
                    let fk =
                        !t.foreign_keys.is_empty() || catalog.user_tables().any(|o| o.foreign_keys.iter().any(|f| f.ref_table == t.id));
                    r[18] = Value::Bool(fk);
                    if t.append_only {
                        // psql's `\d+` shows it as `Options: append_only=true`.
                        r[26] = Value::Array(vec![text("append_only=true")]);
                    }
                    r[25] = relacl(t.owner.as_deref(), &t.grants);
                }
                if !t.keyless() {
                    rows.push(class(pkey_oid(t), &format!("{}_pkey", t.name), "i", AM_BTREE, false, t.primary_key.len()));
                }
                // (views are added after this loop)
                for i in &t.indexes {
                    rows.push(class(i.id as i64, &i.name, "i", AM_BTREE, false, i.columns.len()));
                }
            }
            for sq in catalog.sequences.values() {
                let oid = Value::Int(sq.id as i64);
                let (f, t) = (Value::Bool(false), Value::Bool(true));
                let (zero, null) = (Value::Int(0), Value::Null);
                #[rustfmt::skip]
                rows.push(vec![
                    oid.clone(), text(&sq.name), Value::Int(NAMESPACE_PUBLIC), text("S"), Value::Int(OWNER_OID), zero.clone(),
                    f.clone(), zero.clone(), text("p"), f.clone(), Value::Int(3), zero.clone(), zero.clone(), zero.clone(), oid,
                    zero, Value::Float(-1.0), f.clone(), f.clone(), f.clone(), f.clone(), f.clone(), t, text("n"), f,
                    null.clone(), null.clone(), null, Value::Int(0),
                ]);
            }
            for v in catalog.views.values() {
                let mut row = rows.first().cloned().unwrap_or_default();
                if row.is_empty() {
                    continue;
                }
                row[0] = Value::Int(v.id as i64);
                row[1] = text(&v.name);
                row[3] = text("v");
                row[5] = Value::Int(0);
                row[6] = Value::Bool(false);
                row[7] = Value::Int(0);
                row[10] = Value::Int(v.columns.len() as i64);
                row[14] = Value::Int(0);
                row[18] = Value::Bool(false);
                row[25] = relacl(v.owner.as_deref(), &v.grants);
                row[26] = Value::Null;
                rows.push(row);
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
                    ("relchecks", Int2),
                    ("relpersistence", Text),
                    ("relispartition", Bool),
                    ("relnatts", Int2),
                    ("reltype", Int8),
                    ("reloftype", Int8),
                    ("reltablespace", Int8),
                    ("relfilenode", Int8),
                    ("reltoastrelid", Int8),
                    ("reltuples", Float4),
                    ("relhasrules", Bool),
                    ("relhastriggers", Bool),
                    ("relhassubclass", Bool),
                    ("relrowsecurity", Bool),
                    ("relforcerowsecurity", Bool),
                    ("relispopulated", Bool),
                    ("relreplident", Text),
                    ("relisshared", Bool),
                    ("relacl", DataType::array_of(Text)),
                    ("reloptions", DataType::array_of(Text)),
                    ("relpartbound", Text),
                    // No statistics are kept: relpages as PostgreSQL has it before a first VACUUM.
                    ("relpages", Int4),
                ],
                rows,
            )
        }
        "pg_index" => {
            let mut rows = Vec::new();
            for t in catalog.user_tables() {
                if !t.keyless() {
                    rows.push(index_row(pkey_oid(t), t.id, &t.primary_key, true, true));
                }
                for i in &t.indexes {
                    rows.push(index_row(i.id as i64, t.id, &i.columns, i.unique, false));
                }
            }
            let b = |n: &'static str| (n, Bool);
            (
                vec![
                    ("indexrelid", Int8),
                    ("indrelid", Int8),
                    ("indnatts", Int2),
                    ("indnkeyatts", Int2),
                    b("indisunique"),
                    b("indisprimary"),
                    b("indnullsnotdistinct"),
                    b("indisexclusion"),
                    b("indimmediate"),
                    b("indisclustered"),
                    b("indisvalid"),
                    b("indcheckxmin"),
                    b("indisready"),
                    b("indislive"),
                    b("indisreplident"),
                    ("indkey", Int2Vector),
                    ("indcollation", DataType::array_of(Int8)),
                    ("indclass", DataType::array_of(Int8)),
                    ("indoption", Int2Vector),
                    ("indexprs", Text),
                    ("indpred", Text),
                ],
                rows,
            )
        }
        "pg_attribute" => {
            let mut rows = Vec::new();
            for t in catalog.user_tables() {
                for (i, c) in t.columns.iter().enumerate().filter(|(_, c)| !c.hidden) {
                    let mut row = attribute_row(t.id as i64, i + 1, c, c.default.is_some());
                    if let Some(kind) = catalog.identity(t.id, &c.name).and_then(|s| s.identity.as_deref()) {
                        row[10] = text(kind);
                    }
                    rows.push(row);
                }
                for (n, &ci) in t.primary_key.iter().enumerate() {
                    rows.push(attribute_row(pkey_oid(t), n + 1, &t.columns[ci], false));
                }
                for idx in &t.indexes {
                    for (n, &ci) in idx.columns.iter().enumerate() {
                        rows.push(attribute_row(idx.id as i64, n + 1, &t.columns[ci], false));
                    }
                }
            }
            for v in catalog.views.values() {
                for (n, (name, ty)) in v.columns.iter().enumerate() {
                    let c = ColumnDef::new(name.clone(), *ty);
                    rows.push(attribute_row(v.id as i64, n + 1, &c, false));
                }
            }
            (
                vec![
                    ("attrelid", Int8),
                    ("attname", Text),
                    ("atttypid", Int8),
                    ("attlen", Int2),
                    ("attnum", Int2),
                    ("atttypmod", Int4),
                    ("attndims", Int2),
                    ("attnotnull", Bool),
                    ("atthasdef", Bool),
                    ("atthasmissing", Bool),
                    ("attidentity", Text),
                    ("attgenerated", Text),
                    ("attisdropped", Bool),
                    ("attislocal", Bool),
                    ("attinhcount", Int2),
                    ("attcollation", Int8),
                    ("attstattarget", Int2),
                    ("attacl", Text),
                    ("attoptions", DataType::array_of(Text)),
                    ("attstorage", Text),
                    ("attcompression", Text),
                    ("attalign", Text),
                    ("attbyval", Bool),
                    ("attfdwoptions", DataType::array_of(Text)),
                ],
                rows,
            )
        }
        "pg_description" => {
            let mut rows = Vec::new();
            for t in catalog.user_tables() {
                for (k, text_) in &t.comments {
                    let sub = if k.is_empty() { 0 } else { t.column(k).map_or(0, |i| i as i64 + 1) };
                    rows.push(vec![Value::Int(t.id as i64), Value::Int(1259), Value::Int(sub), text(text_)]);
                }
            }
            (vec![("objoid", Int8), ("classoid", Int8), ("objsubid", Int4), ("description", Text)], rows)
        }
        "pg_views" => (
            vec![("schemaname", Text), ("viewname", Text), ("viewowner", Text), ("definition", Text)],
            catalog.views.values().map(|v| vec![text("public"), text(&v.name), text("admin"), text(&format!(" {};", v.sql))]).collect(),
        ),
        "pg_attrdef" => {
            let mut rows = Vec::new();
            for t in catalog.user_tables() {
                for (i, c) in t.columns.iter().enumerate().filter(|(_, c)| !c.hidden) {
                    if let Some(d) = &c.default {
                        rows.push(vec![Value::Int(attrdef_oid(t, i + 1)), Value::Int(t.id as i64), Value::Int(i as i64 + 1), text(d)]);
                    }
                }
            }
            (vec![("oid", Int8), ("adrelid", Int8), ("adnum", Int2), ("adbin", Text)], rows)
        }
        "pg_constraint" => {
            let mut rows = Vec::new();
            for t in catalog.user_tables() {
                if !t.keyless() {
                    rows.push(constraint_row(t, pkey_oid(t), &format!("{}_pkey", t.name), "p", &t.primary_key));
                }
                for i in t.indexes.iter().filter(|i| i.constraint) {
                    rows.push(constraint_row(t, i.id as i64, &i.name, "u", &i.columns));
                }
                for (n, c) in t.checks.iter().enumerate() {
                    let cols = crate::sql::engine::constraints::check_columns(t, &c.expr);
                    let mut row = constraint_row(t, 0, &c.name, "c", &cols);
                    row[0] = Value::Int(check_oid(t, n));
                    row[9] = Value::Int(0);
                    row[20] = text(&c.expr);
                    rows.push(row);
                }
                for (n, f) in t.foreign_keys.iter().enumerate() {
                    let parent = catalog.table_by_id(f.ref_table);
                    let mut row = constraint_row(t, 0, &f.name, "f", &f.columns);
                    row[0] = Value::Int(fk_oid(t, n));
                    row[9] = Value::Int(parent.map_or(0, |p| referenced_index_oid(p, &f.ref_columns)));
                    row[11] = Value::Int(f.ref_table as i64);
                    row[12] = text(f.on_update.code());
                    row[13] = text(f.on_delete.code());
                    row[14] = text("s");
                    row[19] = int2_array(&f.ref_columns);
                    rows.push(row);
                }
            }
            let b = |n: &'static str| (n, Bool);
            (
                vec![
                    ("oid", Int8),
                    ("conname", Text),
                    ("connamespace", Int8),
                    ("contype", Text),
                    b("condeferrable"),
                    b("condeferred"),
                    b("convalidated"),
                    ("conrelid", Int8),
                    ("contypid", Int8),
                    ("conindid", Int8),
                    ("conparentid", Int8),
                    ("confrelid", Int8),
                    ("confupdtype", Text),
                    ("confdeltype", Text),
                    ("confmatchtype", Text),
                    b("conislocal"),
                    ("coninhcount", Int2),
                    b("connoinherit"),
                    ("conkey", DataType::array_of(Int2)),
                    ("confkey", DataType::array_of(Int2)),
                    ("conbin", Text),
                ],
                rows,
            )
        }
        "pg_type" => {
            let mut rows = Vec::new();
            for &(oid, name, array, len, category, _) in TYPES {
                let row = |oid: i64, name: String, len: i64, category: &str, elem: i64, array: i64| {
                    let (input, output) = if name.starts_with('_') {
                        ("array_in".to_string(), "array_out".to_string())
                    } else {
                        (input_function(&name), output_function(&name))
                    };
                    vec![
                        Value::Int(oid),
                        Value::Text(name),
                        Value::Int(NAMESPACE_PG_CATALOG),
                        Value::Int(OWNER_OID),
                        Value::Int(len),
                        Value::Bool(len > 0 && len <= 8),
                        // `record` is a pseudo-type ('p'); the others are base types.
                        text(if category == "P" { "p" } else { "b" }),
                        text(category),
                        Value::Bool(false),
                        Value::Bool(true),
                        text(","),
                        Value::Int(0),
                        Value::Int(elem),
                        Value::Int(array),
                        Value::Bool(false),
                        Value::Int(0),
                        Value::Int(-1),
                        Value::Int(0),
                        Value::Int(if matches!(category, "S") { 100 } else { 0 }),
                        Value::Null,
                        Value::Null,
                        Value::Text(input),
                        Value::Text(output),
                        // Storage: plain for fixed-width types, extended (TOAST-able) for the others.
                        text(if len > 0 { "p" } else { "x" }),
                    ]
                };
                // The vector types are arrays of their element type too (asyncpg decodes them so).
                let elem = match oid {
                    22 => 21,
                    30 => 26,
                    _ => 0,
                };
                rows.push(row(oid, name.to_string(), len, category, elem, array));
                rows.push(row(array, format!("_{name}"), -1, "A", oid, 0));
            }
            (
                vec![
                    ("oid", Int8),
                    ("typname", Text),
                    ("typnamespace", Int8),
                    ("typowner", Int8),
                    ("typlen", Int2),
                    ("typbyval", Bool),
                    ("typtype", Text),
                    ("typcategory", Text),
                    ("typispreferred", Bool),
                    ("typisdefined", Bool),
                    ("typdelim", Text),
                    ("typrelid", Int8),
                    ("typelem", Int8),
                    ("typarray", Int8),
                    ("typnotnull", Bool),
                    ("typbasetype", Int8),
                    ("typtypmod", Int4),
                    ("typndims", Int4),
                    ("typcollation", Int8),
                    ("typdefault", Text),
                    ("typacl", Text),
                    // regproc in PostgreSQL; here the function's name, which is how a regproc prints.
                    ("typinput", Text),
                    ("typoutput", Text),
                    ("typstorage", Text),
                ],
                rows,
            )
        }
        "pg_collation" => (
            vec![
                ("oid", Int8),
                ("collname", Text),
                ("collnamespace", Int8),
                ("collowner", Int8),
                ("collprovider", Text),
                ("collisdeterministic", Bool),
                ("collencoding", Int4),
                ("collcollate", Text),
                ("collctype", Text),
            ],
            [(100, "default", "d", -1), (950, "C", "c", -1), (951, "POSIX", "c", -1)]
                .into_iter()
                .map(|(oid, n, p, enc)| {
                    let locale = if n == "default" { Value::Null } else { text(n) };
                    vec![
                        Value::Int(oid),
                        text(n),
                        Value::Int(NAMESPACE_PG_CATALOG),
                        Value::Int(OWNER_OID),
                        text(p),
                        Value::Bool(true),
                        Value::Int(enc),
                        locale.clone(),
                        locale,
                    ]
                })
                .collect(),
        ),
        "pg_tables" => (
            vec![
                ("schemaname", Text),
                ("tablename", Text),
                ("tableowner", Text),
                ("tablespace", Text),
                ("hasindexes", Bool),
                ("hasrules", Bool),
                ("hastriggers", Bool),
                ("rowsecurity", Bool),
            ],
            catalog
                .user_tables()
                .map(|t| {
                    vec![
                        text("public"),
                        text(&t.name),
                        text("admin"),
                        Value::Null,
                        Value::Bool(true),
                        Value::Bool(false),
                        Value::Bool(false),
                        Value::Bool(false),
                    ]
                })
                .collect(),
        ),
        "pg_indexes" => {
            let mut rows = Vec::new();
            for t in catalog.user_tables() {
                if !t.keyless() {
                    rows.push(vec![
                        text("public"),
                        text(&t.name),
                        text(&format!("{}_pkey", t.name)),
                        Value::Null,
                        text(&index_def(t, None)),
                    ]);
                }
                for i in &t.indexes {
                    rows.push(vec![text("public"), text(&t.name), text(&i.name), Value::Null, text(&index_def(t, Some(i)))]);
                }
            }
            (vec![("schemaname", Text), ("tablename", Text), ("indexname", Text), ("tablespace", Text), ("indexdef", Text)], rows)
        }
        // What pg_get_indexdef, pg_get_constraintdef, pg_get_userbyid and the reg* casts look up:
        // (kind, oid, column number or 0, text). vouchdb-internal; those functions are rewritten into
        // lookups here. The column names are unusual so that an argument naming a column of the
        // calling query (`pg_get_constraintdef(oid)`) is never captured by this table's columns.
        "vouch_objects" => {
            let mut rows = Vec::new();
            let mut add = |kind: &str, oid: i64, sub: i64, def: String| {
                rows.push(vec![text(kind), Value::Int(oid), Value::Int(sub), Value::Text(def)])
            };
            for t in catalog.user_tables() {
                add("class", t.id as i64, 0, t.name.clone());
                if !t.keyless() {
                    add("class", pkey_oid(t), 0, format!("{}_pkey", t.name));
                    add("def", pkey_oid(t), 0, index_def(t, None));
                    add("pdef", pkey_oid(t), 0, index_def(t, None).replacen(" ON public.", " ON ", 1));
                    add("def", constraint_oid(pkey_oid(t)), 0, format!("PRIMARY KEY ({})", column_list(t, &t.primary_key)));
                    for (n, &c) in t.primary_key.iter().enumerate() {
                        for kind in ["def", "pdef"] {
                            add(kind, pkey_oid(t), n as i64 + 1, quote_ident(&t.columns[c].name));
                        }
                    }
                }
                for (n, c) in t.checks.iter().enumerate() {
                    add("def", check_oid(t, n), 0, format!("CHECK (({}))", c.expr));
                }
                for (n, f) in t.foreign_keys.iter().enumerate() {
                    let Some(parent) = catalog.table_by_id(f.ref_table) else { continue };
                    let mut def = format!(
                        "FOREIGN KEY ({}) REFERENCES {}({})",
                        column_list(t, &f.columns),
                        quote_ident(&parent.name),
                        column_list(parent, &f.ref_columns)
                    );
                    if f.on_update != FkAction::NoAction {
                        def.push_str(&format!(" ON UPDATE {}", f.on_update.sql()));
                    }
                    if f.on_delete != FkAction::NoAction {
                        def.push_str(&format!(" ON DELETE {}", f.on_delete.sql()));
                    }
                    add("def", fk_oid(t, n), 0, def);
                }
                for i in &t.indexes {
                    add("class", i.id as i64, 0, i.name.clone());
                    add("def", i.id as i64, 0, index_def(t, Some(i)));
                    add("pdef", i.id as i64, 0, index_def(t, Some(i)).replacen(" ON public.", " ON ", 1));
                    if i.constraint {
                        add("def", constraint_oid(i.id as i64), 0, format!("UNIQUE ({})", column_list(t, &i.columns)));
                    }
                    for (n, &c) in i.columns.iter().enumerate() {
                        for kind in ["def", "pdef"] {
                            add(kind, i.id as i64, n as i64 + 1, quote_ident(&t.columns[c].name));
                        }
                    }
                }
            }
            for sq in catalog.sequences.values() {
                add("class", sq.id as i64, 0, sq.name.clone());
            }
            for (oid, name) in
                [(NAMESPACE_PG_CATALOG, "pg_catalog"), (NAMESPACE_PUBLIC, "public"), (NAMESPACE_INFORMATION_SCHEMA, "information_schema")]
            {
                add("namespace", oid, 0, name.to_string());
            }
            for (i, u) in catalog.users.values().enumerate() {
                add("role", role_oid(i, &u.name), 0, u.name.clone());
            }
            for t in catalog.user_tables() {
                for (k, c) in &t.comments {
                    let sub = if k.is_empty() { 0 } else { t.column(k).map_or(0, |i| i as i64 + 1) };
                    add("comment", t.id as i64, sub, c.clone());
                }
            }
            for v in catalog.views.values() {
                add("class", v.id as i64, 0, v.name.clone());
                add("def", v.id as i64, 0, format!(" {};", v.sql));
            }
            (vec![("vouch_kind", Text), ("vouch_oid", Int8), ("vouch_sub", Int8), ("vouch_text", Text)], rows)
        }
        "pg_settings" => (
            vec![
                ("name", Text),
                ("setting", Text),
                ("unit", Text),
                ("category", Text),
                ("short_desc", Text),
                ("vartype", Text),
                ("source", Text),
            ],
            crate::sql::engine::SETTINGS
                .iter()
                .map(|(n, v)| vec![text(n), text(v), Value::Null, text("vouchdb"), text(""), text("string"), text("default")])
                .collect(),
        ),
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
                ("datistemplate", Bool),
                ("datallowconn", Bool),
                ("datconnlimit", Int4),
                ("dattablespace", Int8),
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
                Value::Bool(false),
                Value::Bool(true),
                Value::Int(-1),
                Value::Int(TABLESPACE_DEFAULT),
            ]],
        ),
        // PostgreSQL's pg_user view (pgAdmin reads usesuper at connect).
        "pg_user" => (
            vec![
                ("usename", Text),
                ("usesysid", Int8),
                ("usecreatedb", Bool),
                ("usesuper", Bool),
                ("userepl", Bool),
                ("usebypassrls", Bool),
                ("passwd", Text),
                ("valuntil", DataType::Timestamptz),
                ("useconfig", DataType::array_of(Text)),
            ],
            catalog
                .users
                .values()
                .enumerate()
                .map(|(i, u)| {
                    vec![
                        text(&u.name),
                        Value::Int(role_oid(i, &u.name)),
                        Value::Bool(u.superuser),
                        Value::Bool(u.superuser),
                        Value::Bool(false),
                        Value::Bool(false),
                        text("********"),
                        Value::Null,
                        Value::Null,
                    ]
                })
                .collect(),
        ),
        // pg_get_keywords(): PostgreSQL 15's reserved (R), type-or-function-name (T) and column-name (C)
        // keywords (DBeaver reads them at connect for highlighting).
        "pg_get_keywords" => (
            vec![("word", Text), ("catcode", DataType::Char), ("barelabel", Bool), ("catdesc", Text), ("baredesc", Text)],
            KEYWORDS
                .iter()
                .flat_map(|(code, desc, words)| words.split(' ').map(move |w| (w, *code, *desc)))
                .map(|(w, code, desc)| vec![text(w), text(code), Value::Bool(true), text(desc), text("can be bare label")])
                .collect(),
        ),
        "pg_sequences" => (
            vec![
                ("schemaname", Text),
                ("sequencename", Text),
                ("sequenceowner", Text),
                ("data_type", Text),
                ("start_value", Int8),
                ("min_value", Int8),
                ("max_value", Int8),
                ("increment_by", Int8),
                ("cycle", Bool),
                ("cache_size", Int8),
                ("last_value", Int8),
            ],
            catalog
                .sequences
                .values()
                .map(|s| {
                    vec![
                        text("public"),
                        text(&s.name),
                        text("admin"),
                        text(&s.ty.name()),
                        Value::Int(s.start),
                        Value::Int(s.min),
                        Value::Int(s.max),
                        Value::Int(s.increment),
                        Value::Bool(s.cycle),
                        Value::Int(s.cache),
                        // PostgreSQL shows NULL to roles without USAGE and before the first nextval; the
                        // value lives in the ledger, not the catalog, so it is not shown here.
                        Value::Null,
                    ]
                })
                .collect(),
        ),
        "pg_roles" => {
            let rows = catalog
                .users
                .values()
                .enumerate()
                .map(|(i, u)| {
                    vec![
                        Value::Int(role_oid(i, &u.name)),
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
        "pg_sequence" => (
            vec![
                ("seqrelid", Int8),
                ("seqtypid", Int8),
                ("seqstart", Int8),
                ("seqincrement", Int8),
                ("seqmax", Int8),
                ("seqmin", Int8),
                ("seqcache", Int8),
                ("seqcycle", Bool),
            ],
            catalog
                .sequences
                .values()
                .map(|s| {
                    vec![
                        Value::Int(s.id as i64),
                        Value::Int(type_oid(s.ty)),
                        Value::Int(s.start),
                        Value::Int(s.increment),
                        Value::Int(s.max),
                        Value::Int(s.min),
                        Value::Int(s.cache),
                        Value::Bool(s.cycle),
                    ]
                })
                .collect(),
        ),
        // A sequence owned by a column depends on it: 'a' (SERIAL, OWNED BY) or 'i' (identity).
        "pg_depend" => (
            vec![
                ("classid", Int8),
                ("objid", Int8),
                ("objsubid", Int4),
                ("refclassid", Int8),
                ("refobjid", Int8),
                ("refobjsubid", Int4),
                ("deptype", Text),
            ],
            catalog
                .sequences
                .values()
                .filter_map(|s| {
                    let (table, col) = s.owned_by.as_ref()?;
                    let attnum = catalog.table_by_id(*table)?.column(col)? as i64 + 1;
                    let kind = if s.identity.is_some() { "i" } else { "a" };
                    Some(vec![
                        Value::Int(PG_CLASS_OID),
                        Value::Int(s.id as i64),
                        Value::Int(0),
                        Value::Int(PG_CLASS_OID),
                        Value::Int(*table as i64),
                        Value::Int(attnum),
                        text(kind),
                    ])
                })
                .collect(),
        ),
        "pg_auth_members" => (vec![("roleid", Int8), ("member", Int8), ("grantor", Int8), ("admin_option", Bool)], vec![]),
        // Catalogs of features vouchdb does not have: present, so that clients' queries run, and empty.
        _ => match empty_table(name) {
            Some(cols) => (cols, vec![]),
            None => return Ok(None),
        },
    }))
}

/// A table's constraints with information_schema's type names.
fn constraint_list(t: &TableDef) -> Vec<(String, &'static str)> {
    let mut out = if t.keyless() { vec![] } else { vec![(format!("{}_pkey", t.name), "PRIMARY KEY")] };
    out.extend(t.indexes.iter().filter(|i| i.constraint).map(|i| (i.name.clone(), "UNIQUE")));
    out.extend(t.foreign_keys.iter().map(|f| (f.name.clone(), "FOREIGN KEY")));
    out.extend(t.checks.iter().map(|c| (c.name.clone(), "CHECK")));
    out
}

/// PostgreSQL's fixed oids of the catalog tables (for `'pg_catalog.pg_class'::regclass`).
const CATALOG_TABLE_OIDS: &[(&str, i64)] = &[
    ("pg_type", 1247),
    ("pg_attribute", 1249),
    ("pg_proc", 1255),
    ("pg_class", 1259),
    ("pg_authid", 1260),
    ("pg_database", 1262),
    ("pg_am", 2601),
    ("pg_attrdef", 2604),
    ("pg_constraint", 2606),
    ("pg_depend", 2608),
    ("pg_description", 2609),
    ("pg_index", 2610),
    ("pg_inherits", 2611),
    ("pg_namespace", 2615),
    ("pg_rewrite", 2618),
    ("pg_trigger", 2620),
    ("pg_sequence", 2224),
    ("pg_extension", 3079),
    ("pg_collation", 3456),
    ("pg_tablespace", 1213),
    ("pg_auth_members", 1261),
    ("pg_shdescription", 2396),
    ("pg_foreign_table", 3118),
    ("pg_policy", 3256),
    ("pg_partitioned_table", 3350),
    ("pg_statistic_ext", 3381),
    ("pg_event_trigger", 3466),
    ("pg_enum", 3501),
    ("pg_range", 3541),
    ("pg_publication", 6104),
    ("pg_publication_rel", 6106),
    ("pg_publication_namespace", 6237),
    // System views, with PostgreSQL 15's oids.
    ("pg_roles", 12000),
    ("pg_user", 12014),
    ("pg_policies", 12018),
    ("pg_views", 12028),
    ("pg_tables", 12033),
    ("pg_matviews", 12038),
    ("pg_indexes", 12043),
    ("pg_sequences", 12048),
    ("pg_settings", 12104),
    ("pg_stat_activity", 12222),
];

/// The oid of a catalog table named `pg_x` or `pg_catalog.pg_x`.
pub fn catalog_table_oid(name: &str) -> Option<i64> {
    let n = name.trim().to_lowercase();
    let n = n.strip_prefix("pg_catalog.").unwrap_or(&n);
    CATALOG_TABLE_OIDS.iter().find(|(t, _)| *t == n).map(|(_, o)| *o)
}

/// A role's oid: the bootstrap admin is the owner of everything; others are numbered in name order.
/// A table's or view's `relacl` as PostgreSQL prints its aclitem[] (`grantee=privileges/grantor`,
/// the owner's full set first): NULL while no GRANT was made, as PostgreSQL's default privileges are.
fn relacl(owner: Option<&str>, grants: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>) -> Value {
    if grants.is_empty() {
        return Value::Null;
    }
    // The role that created the table (a table from before owners were recorded: the first superuser).
    let owner_name = owner;
    let owner = quote_ident(owner.unwrap_or("admin"));
    let letters = |privs: &std::collections::BTreeSet<String>| -> String {
        [("INSERT", 'a'), ("SELECT", 'r'), ("UPDATE", 'w'), ("DELETE", 'd'), ("TRUNCATE", 'D')]
            .iter()
            .filter(|(p, _)| privs.contains(*p))
            .map(|(_, l)| *l)
            .collect()
    };
    let mut items = vec![text(&format!("{owner}=arwdDxt/{owner}"))];
    for (role, privs) in grants.iter().filter(|(r, _)| Some(r.as_str()) != owner_name) {
        let grantee = if role == "public" { String::new() } else { quote_ident(role) };
        items.push(text(&format!("{grantee}={}/{owner}", letters(privs))));
    }
    Value::Array(items)
}

fn role_oid(i: usize, name: &str) -> i64 {
    if name == "admin" {
        OWNER_OID
    } else {
        16_000 + i as i64
    }
}

/// Built-in types: oid, name, array type oid, length, category, and the vouchdb type that carries it.
/// `oid`, `name`, `"char"` and the `reg*` types are listed for the catalog; their values are integers
/// or text in vouchdb.
/// (oid, typname, array oid, typlen, typcategory, vouchdb type)
pub type TypeRow = (i64, &'static str, i64, i64, &'static str, Option<DataType>);

pub const TYPES: &[TypeRow] = &[
    (16, "bool", 1000, 1, "B", Some(DataType::Bool)),
    (17, "bytea", 1001, -1, "U", Some(DataType::Bytea)),
    (18, "char", 1002, 1, "Z", Some(DataType::Char)),
    (19, "name", 1003, 64, "S", Some(DataType::Name)),
    (20, "int8", 1016, 8, "N", Some(DataType::Int8)),
    (21, "int2", 1005, 2, "N", Some(DataType::Int2)),
    (22, "int2vector", 1006, -1, "A", Some(DataType::Int2Vector)),
    (23, "int4", 1007, 4, "N", Some(DataType::Int4)),
    (24, "regproc", 1008, 4, "N", None),
    (25, "text", 1009, -1, "S", Some(DataType::Text)),
    (26, "oid", 1028, 4, "N", Some(DataType::Oid)),
    (30, "oidvector", 1013, -1, "A", None),
    (114, "json", 199, -1, "U", None),
    (700, "float4", 1021, 4, "N", Some(DataType::Float4)),
    (701, "float8", 1022, 8, "N", Some(DataType::Float8)),
    (1042, "bpchar", 1014, -1, "S", Some(DataType::Bpchar(None))),
    (1043, "varchar", 1015, -1, "S", Some(DataType::Varchar(None))),
    (1082, "date", 1182, 4, "D", Some(DataType::Date)),
    (1114, "timestamp", 1115, 8, "D", Some(DataType::Timestamp)),
    (1184, "timestamptz", 1185, 8, "D", Some(DataType::Timestamptz)),
    (1700, "numeric", 1231, -1, "N", Some(DataType::Numeric)),
    (2205, "regclass", 2210, 4, "N", Some(DataType::Regclass)),
    (2206, "regtype", 2211, 4, "N", None),
    (2249, "record", 2287, -1, "P", None),
    (2950, "uuid", 2951, 16, "U", Some(DataType::Uuid)),
    (3802, "jsonb", 3807, -1, "U", Some(DataType::Jsonb)),
];

/// The name of a built-in scalar type's input function, as in PostgreSQL's pg_type.typinput.
fn input_function(typname: &str) -> String {
    match typname {
        "numeric" | "timestamp" | "timestamptz" | "date" | "uuid" | "jsonb" | "json" => format!("{typname}_in"),
        "char" => "charin".into(),
        _ => format!("{typname}in"),
    }
}

/// The name of a built-in scalar type's output function (pg_type.typoutput).
fn output_function(typname: &str) -> String {
    let input = input_function(typname);
    match input.strip_suffix("_in") {
        Some(base) => format!("{base}_out"),
        None => format!("{}out", input.trim_end_matches("in")),
    }
}

/// The PostgreSQL type oid of a vouchdb type.
pub fn type_oid(t: DataType) -> i64 {
    let scalar = |t: DataType| match t {
        DataType::Varchar(_) => DataType::Varchar(None),
        DataType::Bpchar(_) => DataType::Bpchar(None),
        t => t,
    };
    match t {
        DataType::Record(_) => 2249,
        DataType::Array(e) => TYPES.iter().find(|r| r.5 == Some(scalar(*e))).map_or(1009, |r| r.2),
        t => TYPES.iter().find(|r| r.5 == Some(scalar(t))).map_or(25, |r| r.0),
    }
}

/// PostgreSQL's name for a type oid and type modifier, as `format_type` prints it.
pub fn format_type(oid: i64, typmod: Option<i64>) -> Option<String> {
    if let Some(r) = TYPES.iter().find(|r| r.0 == oid) {
        return Some(match (r.5, typmod) {
            (Some(DataType::Varchar(_)), Some(m)) if m >= 4 => format!("character varying({})", m - 4),
            (Some(DataType::Bpchar(_)), Some(m)) if m >= 4 => format!("character({})", m - 4),
            (Some(DataType::Bpchar(_)), _) => "character".into(),
            (Some(DataType::Numeric), Some(m)) if m >= 4 => format!("numeric({},{})", (m - 4) >> 16, (m - 4) & 0xffff),
            (Some(t), _) => t.name(),
            (None, _) if r.1 == "char" => "\"char\"".into(),
            (None, _) if r.1 == "bpchar" => "character".into(),
            (None, _) => r.1.to_string(),
        });
    }
    let r = TYPES.iter().find(|r| r.2 == oid)?;
    Some(format!("{}[]", format_type(r.0, None)?))
}

/// The type oid and type modifier a column of type `t` reports (`atttypid`, `atttypmod`).
pub fn type_oid_mod(t: DataType) -> (i64, i64) {
    let m = match t {
        DataType::Varchar(Some(n)) | DataType::Bpchar(Some(n)) => n as i64 + 4,
        _ => -1,
    };
    (type_oid(t), m)
}

fn udt_name(t: DataType) -> String {
    match t {
        DataType::Array(e) => format!("_{}", udt_name(*e)),
        t => TYPES.iter().find(|r| r.0 == type_oid(t)).map_or("text", |r| r.1).to_string(),
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
            catalog
                .user_tables()
                .map(|t| vec![text("vouchdb"), text("public"), text(&t.name), text("BASE TABLE")])
                .chain(catalog.views.values().map(|v| vec![text("vouchdb"), text("public"), text(&v.name), text("VIEW")]))
                .collect(),
        ),
        "table_constraints" => {
            let mut rows = Vec::new();
            for t in catalog.user_tables() {
                for (name, kind) in constraint_list(t) {
                    rows.push(vec![
                        text("vouchdb"),
                        text("public"),
                        text(&name),
                        text("vouchdb"),
                        text("public"),
                        text(&t.name),
                        text(kind),
                        text("NO"),
                        text("NO"),
                        text("YES"),
                    ]);
                }
            }
            (
                vec![
                    ("constraint_catalog", Text),
                    ("constraint_schema", Text),
                    ("constraint_name", Text),
                    ("table_catalog", Text),
                    ("table_schema", Text),
                    ("table_name", Text),
                    ("constraint_type", Text),
                    ("is_deferrable", Text),
                    ("initially_deferred", Text),
                    ("enforced", Text),
                ],
                rows,
            )
        }
        "key_column_usage" => {
            let mut rows = Vec::new();
            for t in catalog.user_tables() {
                let mut add = |name: &str, cols: &[usize], refs: Option<&[usize]>| {
                    for (n, &c) in cols.iter().enumerate() {
                        rows.push(vec![
                            text("vouchdb"),
                            text("public"),
                            text(name),
                            text("vouchdb"),
                            text("public"),
                            text(&t.name),
                            text(&t.columns[c].name),
                            Value::Int(n as i64 + 1),
                            refs.map_or(Value::Null, |_| Value::Int(n as i64 + 1)),
                        ]);
                    }
                };
                if !t.keyless() {
                    add(&format!("{}_pkey", t.name), &t.primary_key, None);
                }
                for i in t.indexes.iter().filter(|i| i.constraint) {
                    add(&i.name, &i.columns, None);
                }
                for f in &t.foreign_keys {
                    add(&f.name, &f.columns, Some(&f.ref_columns));
                }
            }
            (
                vec![
                    ("constraint_catalog", Text),
                    ("constraint_schema", Text),
                    ("constraint_name", Text),
                    ("table_catalog", Text),
                    ("table_schema", Text),
                    ("table_name", Text),
                    ("column_name", Text),
                    ("ordinal_position", Int4),
                    ("position_in_unique_constraint", Int4),
                ],
                rows,
            )
        }
        "referential_constraints" => {
            let mut rows = Vec::new();
            for t in catalog.user_tables() {
                for f in &t.foreign_keys {
                    let Some(parent) = catalog.table_by_id(f.ref_table) else { continue };
                    let unique_name = if f.ref_columns == parent.primary_key {
                        format!("{}_pkey", parent.name)
                    } else {
                        parent.indexes.iter().find(|i| i.unique && i.columns == f.ref_columns).map_or_else(String::new, |i| i.name.clone())
                    };
                    rows.push(vec![
                        text("vouchdb"),
                        text("public"),
                        text(&f.name),
                        text("vouchdb"),
                        text("public"),
                        text(&unique_name),
                        text("NONE"),
                        text(f.on_update.sql()),
                        text(f.on_delete.sql()),
                    ]);
                }
            }
            (
                vec![
                    ("constraint_catalog", Text),
                    ("constraint_schema", Text),
                    ("constraint_name", Text),
                    ("unique_constraint_catalog", Text),
                    ("unique_constraint_schema", Text),
                    ("unique_constraint_name", Text),
                    ("match_option", Text),
                    ("update_rule", Text),
                    ("delete_rule", Text),
                ],
                rows,
            )
        }
        "constraint_column_usage" => {
            // The columns a constraint uses: for a foreign key, the referenced columns.
            let mut rows = Vec::new();
            for t in catalog.user_tables() {
                let mut add = |owner: &TableDef, name: &str, cols: &[usize]| {
                    for &c in cols {
                        rows.push(vec![
                            text("vouchdb"),
                            text("public"),
                            text(&owner.name),
                            text(&owner.columns[c].name),
                            text("vouchdb"),
                            text("public"),
                            text(name),
                        ]);
                    }
                };
                if !t.keyless() {
                    add(t, &format!("{}_pkey", t.name), &t.primary_key);
                }
                for i in t.indexes.iter().filter(|i| i.constraint) {
                    add(t, &i.name, &i.columns);
                }
                for f in &t.foreign_keys {
                    if let Some(parent) = catalog.table_by_id(f.ref_table) {
                        add(parent, &f.name, &f.ref_columns);
                    }
                }
            }
            (
                vec![
                    ("table_catalog", Text),
                    ("table_schema", Text),
                    ("table_name", Text),
                    ("column_name", Text),
                    ("constraint_catalog", Text),
                    ("constraint_schema", Text),
                    ("constraint_name", Text),
                ],
                rows,
            )
        }
        "check_constraints" => {
            let mut rows = Vec::new();
            for t in catalog.user_tables() {
                for c in &t.checks {
                    rows.push(vec![text("vouchdb"), text("public"), text(&c.name), text(&format!("(({}))", c.expr))]);
                }
            }
            (vec![("constraint_catalog", Text), ("constraint_schema", Text), ("constraint_name", Text), ("check_clause", Text)], rows)
        }
        // Who holds which privilege on each table and view: the owner (every privilege, as grantor of
        // its own), then each GRANT (grantor the owner; PUBLIC as grantee "PUBLIC").
        "table_privileges" | "role_table_grants" => {
            let mut rows = Vec::new();
            let objects = catalog
                .user_tables()
                .map(|t| (&t.name, t.owner.as_deref(), &t.grants))
                .chain(catalog.views.values().map(|v| (&v.name, v.owner.as_deref(), &v.grants)));
            for (name, owner, grants) in objects {
                let owner = owner.unwrap_or("admin");
                let row = |grantee: &str, privilege: &str| {
                    vec![
                        text(owner),
                        text(grantee),
                        text("vouchdb"),
                        text("public"),
                        text(name),
                        text(privilege),
                        text(if grantee == owner { "YES" } else { "NO" }),
                        text(if privilege == "SELECT" { "YES" } else { "NO" }),
                    ]
                };
                for p in ["INSERT", "SELECT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"] {
                    rows.push(row(owner, p));
                }
                for (role, privs) in grants.iter().filter(|(r, _)| r.as_str() != owner) {
                    let grantee = if role == "public" { "PUBLIC" } else { role.as_str() };
                    for p in ["INSERT", "SELECT", "UPDATE", "DELETE", "TRUNCATE"].iter().filter(|p| privs.contains(**p)) {
                        rows.push(row(grantee, p));
                    }
                }
            }
            (
                vec![
                    ("grantor", Text),
                    ("grantee", Text),
                    ("table_catalog", Text),
                    ("table_schema", Text),
                    ("table_name", Text),
                    ("privilege_type", Text),
                    ("is_grantable", Text),
                    ("with_hierarchy", Text),
                ],
                rows,
            )
        }
        "views" => (
            vec![("table_catalog", Text), ("table_schema", Text), ("table_name", Text), ("view_definition", Text), ("is_updatable", Text)],
            catalog
                .views
                .values()
                .map(|v| vec![text("vouchdb"), text("public"), text(&v.name), text(&format!(" {};", v.sql)), text("NO")])
                .collect(),
        ),
        "columns" => {
            // Tables' columns, then views' (nullable, without defaults, as PostgreSQL lists them).
            struct Col<'a> {
                table: &'a str,
                name: &'a str,
                ty: DataType,
                numeric: Option<(u32, u32)>,
                default: Option<&'a str>,
                not_null: bool,
                identity: Option<&'a str>,
            }
            let mut cols: Vec<(Col, usize)> = Vec::new();
            for t in catalog.user_tables() {
                for (i, c) in t.columns.iter().enumerate().filter(|(_, c)| !c.hidden) {
                    let identity = catalog.identity(t.id, &c.name).and_then(|s| s.identity.as_deref());
                    let col = Col {
                        table: &t.name,
                        name: &c.name,
                        ty: c.ty,
                        numeric: c.numeric,
                        default: c.default.as_deref(),
                        not_null: c.not_null,
                        identity,
                    };
                    cols.push((col, i));
                }
            }
            for v in catalog.views.values() {
                for (i, (name, ty)) in v.columns.iter().enumerate() {
                    let col = Col { table: &v.name, name, ty: *ty, numeric: None, default: None, not_null: false, identity: None };
                    cols.push((col, i));
                }
            }
            let mut rows = Vec::new();
            for (c, i) in cols {
                let data_type = match c.ty {
                    DataType::Varchar(_) => "character varying".to_string(),
                    DataType::Bpchar(_) => "character".to_string(),
                    ty => ty.name(),
                };
                let max_len = match c.ty {
                    DataType::Varchar(Some(n)) | DataType::Bpchar(Some(n)) => Value::Int(n as i64),
                    _ => Value::Null,
                };
                // numeric_precision, numeric_precision_radix, numeric_scale, as PostgreSQL gives them.
                let int = |v: i64| Value::Int(v);
                let (precision, radix, scale) = match (c.ty, c.numeric) {
                    (DataType::Int2, _) => (int(16), int(2), int(0)),
                    (DataType::Int4, _) => (int(32), int(2), int(0)),
                    (DataType::Int8, _) => (int(64), int(2), int(0)),
                    (DataType::Float4, _) => (int(24), int(2), Value::Null),
                    (DataType::Float8, _) => (int(53), int(2), Value::Null),
                    (DataType::Numeric, Some((p, s))) => (int(p as i64), int(10), int(s as i64)),
                    (DataType::Numeric, None) => (Value::Null, int(10), Value::Null),
                    _ => (Value::Null, Value::Null, Value::Null),
                };
                rows.push(vec![
                    text("vouchdb"),
                    text("public"),
                    text(c.table),
                    text(c.name),
                    Value::Int(i as i64 + 1),
                    c.default.map(text).unwrap_or(Value::Null),
                    text(if c.not_null { "NO" } else { "YES" }),
                    text(&data_type),
                    max_len,
                    precision,
                    radix,
                    scale,
                    text(&udt_name(c.ty)),
                    text(if c.identity.is_some() { "YES" } else { "NO" }),
                    match c.identity {
                        Some("a") => text("ALWAYS"),
                        Some(_) => text("BY DEFAULT"),
                        None => Value::Null,
                    },
                ]);
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
                    ("numeric_precision", Int4),
                    ("numeric_precision_radix", Int4),
                    ("numeric_scale", Int4),
                    ("udt_name", Text),
                    ("is_identity", Text),
                    ("identity_generation", Text),
                ],
                rows,
            )
        }
        // Identity columns' sequences are not listed (as in PostgreSQL).
        "sequences" => (
            vec![
                ("sequence_catalog", Text),
                ("sequence_schema", Text),
                ("sequence_name", Text),
                ("data_type", Text),
                ("numeric_precision", Int4),
                ("numeric_precision_radix", Int4),
                ("numeric_scale", Int4),
                ("start_value", Text),
                ("minimum_value", Text),
                ("maximum_value", Text),
                ("increment", Text),
                ("cycle_option", Text),
            ],
            catalog
                .sequences
                .values()
                .filter(|s| s.identity.is_none())
                .map(|s| {
                    let bits = match s.ty {
                        DataType::Int2 => 16,
                        DataType::Int4 => 32,
                        _ => 64,
                    };
                    vec![
                        text("vouchdb"),
                        text("public"),
                        text(&s.name),
                        text(&s.ty.name()),
                        Value::Int(bits),
                        Value::Int(2),
                        Value::Int(0),
                        text(&s.start.to_string()),
                        text(&s.min.to_string()),
                        text(&s.max.to_string()),
                        text(&s.increment.to_string()),
                        text(if s.cycle { "YES" } else { "NO" }),
                    ]
                })
                .collect(),
        ),
        _ => return Ok(None),
    }))
}

/// Catalog tables that exist in PostgreSQL but have no rows in vouchdb.
fn empty_table(name: &str) -> Option<Vec<(&'static str, DataType)>> {
    use DataType::{Bool, Int2, Int4, Int8, Text};
    let arr = DataType::array_of;
    Some(match name {
        "pg_policy" => vec![
            ("oid", Int8),
            ("polname", Text),
            ("polrelid", Int8),
            ("polcmd", Text),
            ("polpermissive", Bool),
            ("polroles", arr(Int8)),
            ("polqual", Text),
            ("polwithcheck", Text),
        ],
        "pg_statistic_ext" => vec![
            ("oid", Int8),
            ("stxrelid", Int8),
            ("stxname", Text),
            ("stxnamespace", Int8),
            ("stxowner", Int8),
            ("stxstattarget", Int4),
            ("stxkeys", arr(Int2)),
            ("stxkind", arr(Text)),
            ("stxexprs", Text),
        ],
        "pg_publication" => vec![
            ("oid", Int8),
            ("pubname", Text),
            ("pubowner", Int8),
            ("puballtables", Bool),
            ("pubinsert", Bool),
            ("pubupdate", Bool),
            ("pubdelete", Bool),
            ("pubtruncate", Bool),
            ("pubviaroot", Bool),
        ],
        "pg_publication_namespace" => vec![("oid", Int8), ("pnpubid", Int8), ("pnnspid", Int8)],
        "pg_publication_rel" => vec![("oid", Int8), ("prpubid", Int8), ("prrelid", Int8), ("prqual", Text), ("prattrs", arr(Int2))],
        "pg_inherits" => vec![("inhrelid", Int8), ("inhparent", Int8), ("inhseqno", Int4), ("inhdetachpending", Bool)],
        "pg_trigger" => vec![
            ("oid", Int8),
            ("tgrelid", Int8),
            ("tgparentid", Int8),
            ("tgname", Text),
            ("tgfoid", Int8),
            ("tgtype", Int2),
            ("tgenabled", Text),
            ("tgisinternal", Bool),
            ("tgconstrrelid", Int8),
            ("tgconstrindid", Int8),
            ("tgconstraint", Int8),
            ("tgdeferrable", Bool),
            ("tginitdeferred", Bool),
            ("tgnargs", Int2),
            ("tgattr", arr(Int2)),
            ("tgqual", Text),
        ],
        "pg_rewrite" => {
            vec![("oid", Int8), ("rulename", Text), ("ev_class", Int8), ("ev_type", Text), ("ev_enabled", Text), ("is_instead", Bool)]
        }
        "pg_shdescription" => vec![("objoid", Int8), ("classoid", Int8), ("description", Text)],
        "pg_extension" => vec![
            ("oid", Int8),
            ("extname", Text),
            ("extowner", Int8),
            ("extnamespace", Int8),
            ("extrelocatable", Bool),
            ("extversion", Text),
        ],
        "pg_foreign_table" => vec![("ftrelid", Int8), ("ftserver", Int8), ("ftoptions", arr(Text))],
        "pg_partitioned_table" => vec![("partrelid", Int8), ("partstrat", Text), ("partnatts", Int2), ("partdefid", Int8)],
        "pg_matviews" => vec![("schemaname", Text), ("matviewname", Text), ("matviewowner", Text), ("definition", Text)],
        "pg_proc" => vec![
            ("oid", Int8),
            ("proname", Text),
            ("pronamespace", Int8),
            ("proowner", Int8),
            ("prolang", Int8),
            ("prokind", Text),
            ("proretset", Bool),
            ("prorettype", Int8),
            ("pronargs", Int2),
            ("proargtypes", arr(Int8)),
        ],
        "pg_enum" => vec![("oid", Int8), ("enumtypid", Int8), ("enumsortorder", DataType::Float4), ("enumlabel", Text)],
        "pg_range" => vec![("rngtypid", Int8), ("rngsubtype", Int8), ("rngmultitypid", Int8)],
        "pg_tablespace" => vec![("oid", Int8), ("spcname", Text), ("spcowner", Int8)],
        // Views of server state a single-node ledger has none of: GSSAPI sessions, replication slots,
        // row-security policies, security labels.
        "pg_stat_gssapi" => vec![("pid", Int4), ("gss_authenticated", Bool), ("principal", Text), ("encrypted", Bool)],
        "pg_replication_slots" => vec![
            ("slot_name", Text),
            ("plugin", Text),
            ("slot_type", Text),
            ("datoid", Int8),
            ("database", Text),
            ("temporary", Bool),
            ("active", Bool),
        ],
        "pg_policies" => vec![
            ("schemaname", Text),
            ("tablename", Text),
            ("policyname", Text),
            ("permissive", Text),
            ("roles", arr(Text)),
            ("cmd", Text),
            ("qual", Text),
            ("with_check", Text),
        ],
        "pg_seclabels" => vec![("objoid", Int8), ("classoid", Int8), ("objsubid", Int4), ("provider", Text), ("label", Text)],
        "pg_event_trigger" => vec![("oid", Int8), ("evtname", Text), ("evtevent", Text), ("evtenabled", Text)],
        "pg_stat_activity" => vec![
            ("datid", Int8),
            ("datname", Text),
            ("pid", Int4),
            ("usename", Text),
            ("application_name", Text),
            ("client_addr", Text),
            ("state", Text),
            ("query", Text),
        ],
        _ => return None,
    })
}

const CONSTRAINT_OID_OFFSET: i64 = 1 << 29;
const ATTRDEF_OID_OFFSET: i64 = 1 << 28;

fn pkey_oid(t: &TableDef) -> i64 {
    t.id as i64 + PKEY_OID_OFFSET
}

/// The oid of the constraint that an index implements.
fn constraint_oid(index_oid: i64) -> i64 {
    index_oid + CONSTRAINT_OID_OFFSET
}

const CHECK_OID_OFFSET: i64 = 1 << 27;

/// Oids of a table's CHECK (n < 128) and FOREIGN KEY constraints.
fn check_oid(t: &TableDef, n: usize) -> i64 {
    CHECK_OID_OFFSET + t.id as i64 * 256 + n as i64
}

fn fk_oid(t: &TableDef, n: usize) -> i64 {
    CHECK_OID_OFFSET + t.id as i64 * 256 + 128 + n as i64
}

/// The index that a foreign key's referenced columns use (the primary key or a unique index).
fn referenced_index_oid(parent: &TableDef, cols: &[usize]) -> i64 {
    if cols == parent.primary_key.as_slice() {
        return pkey_oid(parent);
    }
    parent.indexes.iter().find(|i| i.unique && i.columns == cols).map_or(pkey_oid(parent), |i| i.id as i64)
}

fn attrdef_oid(t: &TableDef, attnum: usize) -> i64 {
    ATTRDEF_OID_OFFSET + t.id as i64 * 1600 + attnum as i64
}

/// An identifier as PostgreSQL prints it: quoted unless it is lower-case letters, digits and `_`.
pub fn quote_ident(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

fn column_list(t: &TableDef, cols: &[usize]) -> String {
    cols.iter().map(|&c| quote_ident(&t.columns[c].name)).collect::<Vec<_>>().join(", ")
}

/// `pg_get_indexdef`'s text; `None` is the primary key.
fn index_def(t: &TableDef, i: Option<&IndexDef>) -> String {
    let (name, unique, cols) = match i {
        None => (format!("{}_pkey", t.name), true, &t.primary_key),
        Some(i) => (i.name.clone(), i.unique, &i.columns),
    };
    format!(
        "CREATE {}INDEX {} ON public.{} USING btree ({})",
        if unique { "UNIQUE " } else { "" },
        quote_ident(&name),
        quote_ident(&t.name),
        column_list(t, cols)
    )
}

fn int2_array(cols: &[usize]) -> Value {
    Value::Array(cols.iter().map(|&c| Value::Int(c as i64 + 1)).collect())
}

fn index_row(oid: i64, table: u32, cols: &[usize], unique: bool, primary: bool) -> Vec<Value> {
    let n = Value::Int(cols.len() as i64);
    let zeros = |v: i64| Value::Array(cols.iter().map(|_| Value::Int(v)).collect());
    vec![
        Value::Int(oid),
        Value::Int(table as i64),
        n.clone(),
        n,
        Value::Bool(unique),
        Value::Bool(primary),
        Value::Bool(false),
        Value::Bool(false),
        Value::Bool(true),
        Value::Bool(false),
        Value::Bool(true),
        Value::Bool(false),
        Value::Bool(true),
        Value::Bool(true),
        Value::Bool(false),
        int2_array(cols),
        zeros(0),
        zeros(0),
        zeros(0),
        Value::Null,
        Value::Null,
    ]
}

/// A column's type modifier (`atttypmod`): varchar's length + 4, NUMERIC(p, s)'s ((p << 16) | s) + 4,
/// or -1.
pub fn column_typmod(c: &ColumnDef) -> i64 {
    match c.numeric {
        Some((p, s)) => (((p as i64) << 16) | s as i64) + 4,
        None => type_oid_mod(c.ty).1,
    }
}

/// A type's `typlen`: its fixed width in bytes, or -1 for a variable-length type.
pub fn type_len(t: DataType) -> i64 {
    let oid = type_oid(t);
    TYPES.iter().find(|r| r.0 == oid).map_or(-1, |r| r.3)
}

fn attribute_row(rel: i64, attnum: usize, c: &ColumnDef, has_default: bool) -> Vec<Value> {
    let (oid, typmod) = (type_oid(c.ty), column_typmod(c));
    let len = type_len(c.ty);
    vec![
        Value::Int(rel),
        text(&c.name),
        Value::Int(oid),
        Value::Int(len),
        Value::Int(attnum as i64),
        Value::Int(typmod),
        Value::Int(c.ty.elem().is_some() as i64),
        Value::Bool(c.not_null),
        Value::Bool(has_default),
        Value::Bool(c.missing.is_some()),
        text(""),
        text(""),
        Value::Bool(false),
        Value::Bool(true),
        Value::Int(0),
        Value::Int(if c.ty.is_text() { 100 } else { 0 }),
        Value::Int(-1),
        Value::Null,
        Value::Null,
        text(if len == -1 { "x" } else { "p" }),
        text(""),
        text(match len {
            1 => "c",
            2 => "s",
            4 => "i",
            _ => "d",
        }),
        Value::Bool(len > 0 && len <= 8),
        Value::Null,
    ]
}

fn constraint_row(t: &TableDef, index_oid: i64, name: &str, kind: &str, cols: &[usize]) -> Vec<Value> {
    vec![
        Value::Int(constraint_oid(index_oid)),
        text(name),
        Value::Int(NAMESPACE_PUBLIC),
        text(kind),
        Value::Bool(false),
        Value::Bool(false),
        Value::Bool(true),
        Value::Int(t.id as i64),
        Value::Int(0),
        Value::Int(index_oid),
        Value::Int(0),
        Value::Int(0),
        text(" "),
        text(" "),
        text(" "),
        Value::Bool(true),
        Value::Int(0),
        Value::Bool(true),
        int2_array(cols),
        Value::Null,
        Value::Null,
    ]
}
