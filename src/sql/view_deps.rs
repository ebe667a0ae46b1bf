//! Views over a table that ALTER TABLE changes. A view is stored as its query text, so the columns it
//! depends on are found by planning it: a view reads a column when it no longer plans to the same
//! columns once that column is dropped. As in PostgreSQL:
//! - DROP COLUMN of a column a view reads is 2BP01, or drops the view (and views over it) with CASCADE;
//! - ALTER COLUMN … TYPE of a column a view reads is 0A000;
//! - RENAME COLUMN and RENAME TO carry the views along: their text is rewritten to the new name and
//!   must plan to the same columns (a rewrite that cannot is refused, 0A000, nothing changed).

use super::*;
use crate::sql::catalog::ViewDef;

/// What ALTER TABLE does to a table's column (or to its name), for the views that read it.
pub(crate) enum ViewImpact<'a> {
    DropColumn { column: &'a str, cascade: bool },
    ColumnType { column: &'a str },
    RenameColumn { old: &'a str, new: &'a str },
    RenameTable { old: &'a str, new: &'a str },
}

/// The views ALTER TABLE changes: dropped (CASCADE) and rewritten.
#[derive(Default)]
pub(crate) struct ViewChanges {
    pub dropped: Vec<ViewDef>,
    pub rewritten: Vec<ViewDef>,
}

impl ViewChanges {
    pub(crate) fn entries(&self) -> Vec<Entry> {
        self.dropped
            .iter()
            .map(|v| Entry::delete(crate::sql::catalog::SYS_VIEWS, v.id.to_be_bytes().to_vec()))
            .chain(self.rewritten.iter().map(ViewDef::entry))
            .collect()
    }

    pub(crate) fn apply(self, c: &mut Catalog) {
        for v in self.dropped {
            c.views.remove(&v.name);
        }
        for v in self.rewritten {
            c.views.insert(v.name.clone(), v);
        }
    }
}

impl Engine {
    /// Whether `sql` plans, under `catalog`, to columns of the types `columns` has.
    fn plans_to(&self, catalog: &Catalog, sql: &str, columns: &[(String, DataType)]) -> bool {
        let catalog = Arc::new(catalog.clone());
        let _scope = TxnCatalog::enter(Some(&catalog));
        let Ok(Some((Statement::Query(q), _))) = crate::sql::parse(sql).map(|v| v.into_iter().next()) else { return false };
        match self.plan_query(&q, &mut vec![]) {
            Ok(plan) => {
                let got: Vec<DataType> = plan.columns().into_iter().map(|c| c.ty).collect();
                got.len() == columns.len() && got.iter().zip(columns).all(|(a, (_, b))| a == b)
            }
            Err(_) => false,
        }
    }

    /// The views that read column `column` of table `t` (as the catalog is now).
    fn views_reading_column(&self, t: &TableDef, column: &str) -> Vec<ViewDef> {
        let catalog = self.catalog();
        let Some(i) = t.column(column) else { return Vec::new() };
        let mut without = (*catalog).clone();
        let mut hidden = t.clone();
        drop_column_def(&mut hidden, i);
        without.tables.remove(&t.name);
        without.tables.insert(hidden.name.clone(), hidden);
        catalog
            .views
            .values()
            .filter(|v| view_reads(&v.sql).contains(&t.name) && !self.plans_to(&without, &v.sql, &v.columns))
            .cloned()
            .collect()
    }

    /// Check (and work out) what an ALTER TABLE step on table `t` (as it is before the step) does to
    /// the views over it.
    pub(crate) fn views_after_alter(&self, t: &TableDef, impact: ViewImpact) -> SqlResult<ViewChanges> {
        let mut out = ViewChanges::default();
        match impact {
            ViewImpact::DropColumn { column, cascade } => {
                let reading = self.views_reading_column(t, column);
                let Some(first) = reading.first() else { return Ok(out) };
                if !cascade {
                    let mut e = SqlError::new(
                        "2BP01",
                        format!("cannot drop column {column} of table {} because other objects depend on it", t.name),
                    );
                    e.fields = Some(Box::new(crate::sql::error::ErrorFields {
                        detail: Some(format!("view {} depends on column {column} of table {}", first.name, t.name)),
                        ..Default::default()
                    }));
                    return Err(e);
                }
                let names: BTreeSet<String> = reading.iter().map(|v| v.name.clone()).collect();
                out.dropped = self.dependent_views(&names, "view", true)?;
                out.dropped.extend(reading);
            }
            ViewImpact::ColumnType { column } => {
                if let Some(v) = self.views_reading_column(t, column).first() {
                    let mut e = SqlError::new("0A000", "cannot alter type of a column used by a view or rule");
                    e.fields = Some(Box::new(crate::sql::error::ErrorFields {
                        detail: Some(format!("rule _RETURN on view {} depends on column \"{column}\"", v.name)),
                        ..Default::default()
                    }));
                    return Err(e);
                }
            }
            ViewImpact::RenameColumn { old, new } => {
                let reading = self.views_reading_column(t, old);
                if reading.is_empty() {
                    return Ok(out);
                }
                let mut after = (*self.catalog()).clone();
                let mut renamed = t.clone();
                let i = renamed.column(old).expect("views read it");
                renamed.columns[i].name = new.to_string();
                after.tables.insert(renamed.name.clone(), renamed);
                out.rewritten = self.rewrite_views(&mut after, reading, old, new)?;
            }
            ViewImpact::RenameTable { old, new } => {
                let catalog = self.catalog();
                let reading: Vec<ViewDef> = catalog.views.values().filter(|v| view_reads(&v.sql).contains(old)).cloned().collect();
                if reading.is_empty() {
                    return Ok(out);
                }
                let mut after = (*catalog).clone();
                let mut renamed = t.clone();
                renamed.name = new.to_string();
                after.tables.remove(old);
                after.tables.insert(new.to_string(), renamed);
                out.rewritten = self.rewrite_views(&mut after, reading, old, new)?;
            }
        }
        Ok(out)
    }

    /// The views `reading` with `old` renamed `new` in their text, each planning under `after` to the
    /// columns it had (else 0A000: the view cannot follow the rename).
    fn rewrite_views(&self, after: &mut Catalog, reading: Vec<ViewDef>, old: &str, new: &str) -> SqlResult<Vec<ViewDef>> {
        let mut out = Vec::new();
        for mut v in reading {
            let sql = crate::sql::rename_ident(&v.sql, old, new);
            if !self.plans_to(after, &sql, &v.columns) {
                return Err(SqlError::unsupported(format!(
                    "cannot rename \"{old}\" to \"{new}\": view {} reads it and could not be rewritten to follow (drop and create the view again)",
                    v.name
                )));
            }
            v.sql = sql;
            after.views.insert(v.name.clone(), v.clone());
            out.push(v);
        }
        Ok(out)
    }
}
