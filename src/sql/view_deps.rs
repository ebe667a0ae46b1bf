//! Views over a table that ALTER TABLE changes. A view is stored as its query text, so the columns it
//! depends on are found by planning it: a view reads a column when its plan changes (or fails) once
//! that column is dropped. As in PostgreSQL:
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
    /// The columns (names and types) view `v`'s text `sql` plans to under `catalog`, as many as the
    /// view has (a `*` over a table that gained columns plans to more); None when it does not plan.
    fn shape_under(&self, catalog: &Arc<Catalog>, v: &ViewDef, sql: &str) -> Option<Vec<(String, DataType)>> {
        let _scope = TxnCatalog::enter(Some(catalog));
        let Ok(Some((Statement::Query(q), _))) = crate::sql::parse(sql).map(|v| v.into_iter().next()) else { return None };
        let plan = self.plan_query(&q, &mut vec![]).ok()?;
        Some(plan.columns().into_iter().take(v.columns.len()).map(|c| (c.name, c.ty)).collect())
    }

    /// The catalog as it is, with table `t` as given (an ALTER TABLE step in progress).
    fn catalog_with(&self, t: &TableDef, old_name: &str) -> Arc<Catalog> {
        let mut c = (*self.catalog()).clone();
        c.tables.remove(old_name);
        c.tables.insert(t.name.clone(), t.clone());
        Arc::new(c)
    }

    /// The views that read column `column` of table `t`: the ones whose plan changes (or fails) once
    /// the column is dropped. (`SELECT *` reads every column.)
    fn views_reading_column(&self, t: &TableDef, column: &str) -> Vec<ViewDef> {
        let Some(i) = t.column(column) else { return Vec::new() };
        let now = self.catalog_with(t, &t.name);
        let mut hidden = t.clone();
        drop_column_def(&mut hidden, i);
        let without = self.catalog_with(&hidden, &t.name);
        now.views
            .values()
            .filter(|v| view_reads(&v.sql).contains(&t.name))
            .filter(|v| self.shape_under(&now, v, &v.sql).is_some_and(|shape| self.shape_under(&without, v, &v.sql) != Some(shape)))
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
                    return Err(SqlError::new(
                        "2BP01",
                        format!("cannot drop column {column} of table {} because other objects depend on it", t.name),
                    )
                    .with_detail(format!("view {} depends on column {column} of table {}", first.name, t.name)));
                }
                let names: BTreeSet<String> = reading.iter().map(|v| v.name.clone()).collect();
                out.dropped = self.dependent_views(&names, "view", true)?;
                out.dropped.extend(reading);
            }
            ViewImpact::ColumnType { column } => {
                if let Some(v) = self.views_reading_column(t, column).first() {
                    return Err(SqlError::new("0A000", "cannot alter type of a column used by a view or rule")
                        .with_detail(format!("rule _RETURN on view {} depends on column \"{column}\"", v.name)));
                }
            }
            ViewImpact::RenameColumn { old, new } => {
                let reading = self.views_reading_column(t, old);
                if reading.is_empty() {
                    return Ok(out);
                }
                let mut renamed = t.clone();
                let i = renamed.column(old).expect("views read it");
                renamed.columns[i].name = new.to_string();
                let before = self.catalog_with(t, &t.name);
                let mut after = self.catalog_with(&renamed, &t.name);
                out.rewritten = self.rewrite_views(&before, &mut after, reading, old, new)?;
            }
            ViewImpact::RenameTable { old, new } => {
                let before = self.catalog_with(t, &t.name);
                let reading: Vec<ViewDef> = before.views.values().filter(|v| view_reads(&v.sql).contains(old)).cloned().collect();
                if reading.is_empty() {
                    return Ok(out);
                }
                let mut renamed = t.clone();
                renamed.name = new.to_string();
                let mut after = self.catalog_with(&renamed, old);
                out.rewritten = self.rewrite_views(&before, &mut after, reading, old, new)?;
            }
        }
        Ok(out)
    }

    /// The views `reading` with `old` renamed `new` in their text, each planning under `after` to
    /// columns of the types it planned to `before` (else 0A000: the view cannot follow the rename).
    fn rewrite_views(
        &self,
        before: &Arc<Catalog>,
        after: &mut Arc<Catalog>,
        reading: Vec<ViewDef>,
        old: &str,
        new: &str,
    ) -> SqlResult<Vec<ViewDef>> {
        let types = |shape: Option<Vec<(String, DataType)>>| shape.map(|s| s.into_iter().map(|(_, t)| t).collect::<Vec<_>>());
        let mut out = Vec::new();
        for mut v in reading {
            let sql = crate::sql::rename_ident(&v.sql, old, new);
            let was = types(self.shape_under(before, &v, &v.sql));
            if was.is_none() || types(self.shape_under(after, &v, &sql)) != was {
                return Err(SqlError::unsupported(format!(
                    "cannot rename \"{old}\" to \"{new}\": view {} reads it and could not be rewritten to follow (drop and create the view again)",
                    v.name
                )));
            }
            v.sql = sql;
            Arc::make_mut(after).views.insert(v.name.clone(), v.clone());
            out.push(v);
        }
        Ok(out)
    }
}
