//! COPY's text and CSV formats, as PostgreSQL 15 reads and writes them: the options of a COPY
//! statement, a decoder from the bytes a client sends (`COPY … FROM STDIN`) to rows of fields, and an
//! encoder from result rows to the bytes of `COPY … TO STDOUT`. No storage here: the engine turns
//! decoded fields into values and inserts them through the INSERT path (`engine::plan`).

use super::error::{SqlError, SqlResult};
use super::expr::normalize_ident;
use super::value::{DataType, Value};
use sqlparser::ast::{CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopyTarget, Ident, Statement};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Csv,
}

/// The options of one COPY statement, validated as PostgreSQL validates them.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    pub format: Format,
    pub header: bool,
    pub delimiter: u8,
    pub null: String,
    pub quote: u8,
    pub escape: u8,
    /// FORCE_QUOTE: `None` for none, `Some(vec![])` for `*`.
    pub force_quote: Option<Vec<String>>,
    pub force_not_null: Vec<String>,
    pub force_null: Vec<String>,
}

fn redundant() -> SqlError {
    SqlError::syntax("conflicting or redundant options")
}

fn one_byte(c: char, what: &str) -> SqlResult<u8> {
    if c.is_ascii() {
        Ok(c as u8)
    } else {
        Err(SqlError::unsupported(format!("COPY {what} must be a single one-byte character")))
    }
}

fn names(ids: &[Ident]) -> Vec<String> {
    ids.iter().map(normalize_ident).collect()
}

impl CopyOptions {
    /// The options of a `COPY` statement (`to`: COPY TO). Refuses binary format (0A000) and what
    /// PostgreSQL refuses.
    pub fn from_statement(stmt: &Statement) -> SqlResult<CopyOptions> {
        let Statement::Copy { to, options, legacy_options, .. } = stmt else {
            return Err(SqlError::new("XX000", "not a COPY statement"));
        };
        let to = *to;
        let mut format: Option<String> = None;
        let mut header = None;
        let mut delimiter = None;
        let mut null = None;
        let mut quote = None;
        let mut escape = None;
        let mut force_quote: Option<Vec<String>> = None;
        let mut force_not_null = None;
        let mut force_null = None;
        fn set<T>(slot: &mut Option<T>, v: T) -> SqlResult<()> {
            if slot.is_some() {
                return Err(redundant());
            }
            *slot = Some(v);
            Ok(())
        }
        for o in options {
            match o {
                CopyOption::Format(f) => set(&mut format, f.value.to_lowercase())?,
                CopyOption::Freeze(_) => {}
                CopyOption::Delimiter(c) => set(&mut delimiter, one_byte(*c, "delimiter")?)?,
                CopyOption::Null(s) => set(&mut null, s.clone())?,
                CopyOption::Header(h) => set(&mut header, *h)?,
                CopyOption::Quote(c) => set(&mut quote, one_byte(*c, "quote")?)?,
                CopyOption::Escape(c) => set(&mut escape, one_byte(*c, "escape")?)?,
                CopyOption::ForceQuote(cols) => set(&mut force_quote, star_or_names(cols))?,
                CopyOption::ForceNotNull(cols) => set(&mut force_not_null, names(cols))?,
                CopyOption::ForceNull(cols) => set(&mut force_null, names(cols))?,
                CopyOption::Encoding(e) => {
                    let e = e.to_ascii_uppercase().replace(['-', '_'], "");
                    if e != "UTF8" && e != "SQLASCII" {
                        return Err(SqlError::unsupported(format!(
                            "COPY ENCODING '{e}' is not supported: vouchdb's only encoding is UTF8"
                        )));
                    }
                }
            }
        }
        for o in legacy_options {
            match o {
                CopyLegacyOption::Binary => set(&mut format, "binary".into())?,
                CopyLegacyOption::Delimiter(c) => set(&mut delimiter, one_byte(*c, "delimiter")?)?,
                CopyLegacyOption::Null(s) => set(&mut null, s.clone())?,
                CopyLegacyOption::Header => set(&mut header, true)?,
                CopyLegacyOption::Csv(csv) => {
                    set(&mut format, "csv".into())?;
                    for c in csv {
                        match c {
                            CopyLegacyCsvOption::Header => set(&mut header, true)?,
                            CopyLegacyCsvOption::Quote(q) => set(&mut quote, one_byte(*q, "quote")?)?,
                            CopyLegacyCsvOption::Escape(e) => set(&mut escape, one_byte(*e, "escape")?)?,
                            CopyLegacyCsvOption::ForceQuote(cols) => set(&mut force_quote, star_or_names(cols))?,
                            CopyLegacyCsvOption::ForceNotNull(cols) => set(&mut force_not_null, names(cols))?,
                        }
                    }
                }
                other => return Err(SqlError::syntax(format!("COPY option {other} is not PostgreSQL syntax"))),
            }
        }
        let format = match format.as_deref() {
            None | Some("text") => Format::Text,
            Some("csv") => Format::Csv,
            Some("binary") => {
                return Err(SqlError::unsupported("COPY FORMAT binary is not supported by vouchdb; use FORMAT text or FORMAT csv"))
            }
            Some(f) => return Err(SqlError::new("22023", format!("COPY format \"{f}\" not recognized"))),
        };
        let csv = format == Format::Csv;
        let delimiter = delimiter.unwrap_or(if csv { b',' } else { b'\t' });
        let null = null.unwrap_or_else(|| if csv { String::new() } else { "\\N".into() });
        if !csv {
            if quote.is_some() {
                return Err(SqlError::unsupported("COPY quote available only in CSV mode"));
            }
            if escape.is_some() {
                return Err(SqlError::unsupported("COPY escape available only in CSV mode"));
            }
            if force_quote.is_some() {
                return Err(SqlError::unsupported("COPY force quote available only in CSV mode"));
            }
            if force_not_null.is_some() {
                return Err(SqlError::unsupported("COPY force not null available only in CSV mode"));
            }
            if force_null.is_some() {
                return Err(SqlError::unsupported("COPY force null available only in CSV mode"));
            }
        }
        if force_quote.is_some() && !to {
            return Err(SqlError::unsupported("COPY force quote only available using COPY TO"));
        }
        if force_not_null.is_some() && to {
            return Err(SqlError::unsupported("COPY force not null only available using COPY FROM"));
        }
        if force_null.is_some() && to {
            return Err(SqlError::unsupported("COPY force null only available using COPY FROM"));
        }
        let quote = quote.unwrap_or(b'"');
        let escape = escape.unwrap_or(quote);
        if delimiter == b'\n' || delimiter == b'\r' {
            return Err(SqlError::new("22023", "COPY delimiter cannot be newline or carriage return"));
        }
        if null.contains(['\n', '\r']) {
            return Err(SqlError::new("22023", "COPY null representation cannot use newline or carriage return"));
        }
        if !csv && b"\\.abcdefghijklmnopqrstuvwxyz0123456789".contains(&delimiter) {
            return Err(SqlError::new("22023", format!("COPY delimiter cannot be \"{}\"", delimiter as char)));
        }
        if csv && delimiter == quote {
            return Err(SqlError::new("22023", "COPY delimiter and quote must be different"));
        }
        if null.as_bytes().contains(&delimiter) {
            return Err(SqlError::new("22023", "COPY delimiter must not appear in the NULL specification"));
        }
        if csv && null.as_bytes().contains(&quote) {
            return Err(SqlError::new("22023", "CSV quote character must not appear in the NULL specification"));
        }
        Ok(CopyOptions {
            format,
            header: header.unwrap_or(false),
            delimiter,
            null,
            quote,
            escape,
            force_quote,
            force_not_null: force_not_null.unwrap_or_default(),
            force_null: force_null.unwrap_or_default(),
        })
    }
}

fn star_or_names(cols: &[Ident]) -> Vec<String> {
    if cols.len() == 1 && cols[0].value == "*" {
        vec![]
    } else {
        names(cols)
    }
}

/// Whether a COPY statement reads from or writes to a server-side file or program (refused).
pub fn refuse_server_side(target: &CopyTarget, to: bool) -> SqlResult<()> {
    match target {
        CopyTarget::Stdin | CopyTarget::Stdout => Ok(()),
        CopyTarget::File { .. } => Err(SqlError::new(
            "42501",
            format!(
                "COPY {} a file is not allowed: vouchdb has no server-side file access; use COPY … {} (psql's \\copy) instead",
                if to { "to" } else { "from" },
                if to { "TO STDOUT" } else { "FROM STDIN" }
            ),
        )),
        CopyTarget::Program { .. } => Err(SqlError::new(
            "42501",
            format!("COPY {} a program is not allowed: vouchdb runs no server-side programs", if to { "to" } else { "from" }),
        )),
    }
}

// ---- COPY FROM: decoding ---------------------------------------------------------------------------

/// A decoded input line: its 1-based line number in the input, its raw bytes (for error contexts)
/// and its fields (None for NULL).
pub struct Line<'a> {
    pub number: u64,
    pub raw: &'a [u8],
    pub fields: Vec<Option<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eol {
    Nl,
    Cr,
    CrNl,
}

/// Reads the rows of COPY input (text or CSV) one at a time, as PostgreSQL's COPY FROM does.
pub struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    line: u64,
    opts: &'a CopyOptions,
    eol: Option<Eol>,
    done: bool,
    /// Per column: FORCE_NOT_NULL, FORCE_NULL.
    force_not_null: Vec<bool>,
    force_null: Vec<bool>,
    ncols: usize,
    /// `COPY t, ` for error contexts.
    table: String,
}

fn bad_format(m: impl Into<String>) -> SqlError {
    SqlError::new("22P04", m)
}

fn invalid_utf8(bytes: &[u8]) -> SqlError {
    let e = std::str::from_utf8(bytes).err();
    let at = e.map(|e| e.valid_up_to()).unwrap_or(0);
    let bad: Vec<String> = bytes[at..].iter().take(2).map(|b| format!("0x{b:02x}")).collect();
    SqlError::new("22021", format!("invalid byte sequence for encoding \"UTF8\": {}", bad.join(" ")))
}

/// PostgreSQL's CONTEXT of a COPY error shows at most this much of a line or value.
fn clip(s: &str) -> String {
    const MAX: usize = 100;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(MAX).collect::<String>())
    }
}

impl<'a> Decoder<'a> {
    /// `columns`: the names of the columns the input fills, in input order.
    pub fn new(data: &'a [u8], opts: &'a CopyOptions, table: &str, columns: &[String]) -> SqlResult<Decoder<'a>> {
        let find = |list: &[String], what: &str| -> SqlResult<Vec<bool>> {
            let mut flags = vec![false; columns.len()];
            for n in list {
                let i = columns
                    .iter()
                    .position(|c| c == n)
                    .ok_or_else(|| SqlError::new("42P10", format!("{what} column \"{n}\" not referenced by COPY")))?;
                flags[i] = true;
            }
            Ok(flags)
        };
        Ok(Decoder {
            data,
            pos: 0,
            line: 0,
            opts,
            eol: None,
            done: false,
            force_not_null: find(&opts.force_not_null, "FORCE_NOT_NULL")?,
            force_null: find(&opts.force_null, "FORCE_NULL")?,
            ncols: columns.len(),
            table: table.to_string(),
        })
    }

    /// The CONTEXT of an error on the current line: `COPY t, line 3: "…"`.
    pub fn line_context(&self, raw: &[u8]) -> String {
        format!("COPY {}, line {}: \"{}\"", self.table, self.line, clip(&String::from_utf8_lossy(raw)))
    }

    /// The CONTEXT of an error in one value: `COPY t, line 3, column c: "…"`.
    pub fn column_context(&self, line: u64, column: &str, value: Option<&str>) -> String {
        match value {
            Some(v) => format!("COPY {}, line {line}, column {column}: \"{}\"", self.table, clip(v)),
            None => format!("COPY {}, line {line}, column {column}: null input", self.table),
        }
    }

    fn with_line(&self, e: SqlError, raw: &[u8]) -> SqlError {
        let ctx = self.line_context(raw);
        e.with_context(ctx)
    }

    /// The next line's raw bytes (without its end of line), or None at the end of the data or at the
    /// end-of-copy marker `\.`.
    fn read_line(&mut self) -> SqlResult<Option<&'a [u8]>> {
        if self.done || self.pos >= self.data.len() {
            self.done = true;
            return Ok(None);
        }
        let data = self.data;
        let start = self.pos;
        let csv = self.opts.format == Format::Csv;
        let (quote, escape) = (self.opts.quote, self.opts.escape);
        let mut i = start;
        let mut in_quote = false;
        self.line += 1;
        let end; // end of the line's content
        let next; // start of the next line
        loop {
            if i >= data.len() {
                if in_quote {
                    self.done = true;
                    return Err(self.with_line(bad_format("unterminated CSV quoted field"), &data[start..]));
                }
                // (A backslash as the data's last byte stepped past its end.)
                end = data.len();
                next = data.len();
                break;
            }
            let c = data[i];
            if csv {
                if in_quote {
                    if c == escape && i + 1 < data.len() && (data[i + 1] == quote || data[i + 1] == escape) && escape != quote {
                        i += 2;
                        continue;
                    }
                    if c == quote {
                        in_quote = false;
                    }
                    i += 1;
                    continue;
                }
                if c == quote {
                    in_quote = true;
                    i += 1;
                    continue;
                }
            } else if c == b'\\' {
                if i + 1 < data.len() && data[i + 1] == b'.' {
                    // The end-of-copy marker: alone on its line, then an end of line or the end of the data.
                    let after = &data[i + 2..];
                    let at_end = after.is_empty() || after[0] == b'\n' || after.starts_with(b"\r");
                    if i == start && at_end {
                        self.done = true;
                        return Ok(None);
                    }
                    self.done = true;
                    return Err(self.with_line(bad_format("end-of-copy marker corrupt"), &data[start..i + 2]));
                }
                // A backslash escapes the next byte, a line end included.
                i += 2;
                continue;
            }
            if c == b'\n' || c == b'\r' {
                let eol = if c == b'\n' {
                    Eol::Nl
                } else if data.get(i + 1) == Some(&b'\n') {
                    Eol::CrNl
                } else {
                    Eol::Cr
                };
                let expected = *self.eol.get_or_insert(eol);
                if eol != expected {
                    self.done = true;
                    let cr = c == b'\r' && expected != Eol::Cr;
                    let msg = match (cr, csv) {
                        (true, false) => "literal carriage return found in data",
                        (true, true) => "unquoted carriage return found in data",
                        (false, false) => "literal newline found in data",
                        (false, true) => "unquoted newline found in data",
                    };
                    return Err(self.with_line(bad_format(msg), &data[start..i]));
                }
                end = i;
                next = if eol == Eol::CrNl { i + 2 } else { i + 1 };
                break;
            }
            i += 1;
        }
        self.pos = next;
        let line = &data[start..end];
        if csv && line == b"\\." {
            self.done = true;
            return Ok(None);
        }
        Ok(Some(line))
    }

    /// The next row, or None after the last.
    pub fn next_row(&mut self) -> SqlResult<Option<Line<'a>>> {
        if self.line == 0 && self.opts.header && self.read_line()?.is_none() {
            return Ok(None);
        }
        let Some(raw) = self.read_line()? else { return Ok(None) };
        let fields = match self.opts.format {
            Format::Text => self.split_text(raw),
            Format::Csv => self.split_csv(raw),
        }
        .map_err(|e| self.with_line(e, raw))?;
        // One empty field on an empty line: PostgreSQL reads it as one field, so a single-column
        // table gets an empty string (or NULL when that is the null marker).
        if fields.len() < self.ncols {
            return Err(self.with_line(bad_format("missing data for column"), raw).missing_column(fields.len()));
        }
        if fields.len() > self.ncols {
            return Err(self.with_line(bad_format("extra data after last expected column"), raw));
        }
        Ok(Some(Line { number: self.line, raw, fields }))
    }

    fn split_text(&self, raw: &[u8]) -> SqlResult<Vec<Option<String>>> {
        let d = self.opts.delimiter;
        let null = self.opts.null.as_bytes();
        let mut fields = Vec::with_capacity(self.ncols);
        let mut i = 0;
        loop {
            let start = i;
            let mut out: Vec<u8> = Vec::new();
            while i < raw.len() && raw[i] != d {
                let c = raw[i];
                if c == b'\\' && i + 1 >= raw.len() {
                    // A backslash that ends the data escapes nothing; PostgreSQL drops it.
                    i += 1;
                    continue;
                }
                if c != b'\\' {
                    out.push(c);
                    i += 1;
                    continue;
                }
                let n = raw[i + 1];
                i += 2;
                match n {
                    b'0'..=b'7' => {
                        let mut v = u32::from(n - b'0');
                        for _ in 0..2 {
                            match raw.get(i) {
                                Some(&o @ b'0'..=b'7') => {
                                    v = v * 8 + u32::from(o - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        out.push((v & 0xff) as u8);
                    }
                    b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                        let mut v = 0u32;
                        for _ in 0..2 {
                            match raw.get(i) {
                                Some(h) if h.is_ascii_hexdigit() => {
                                    v = v * 16 + (*h as char).to_digit(16).unwrap_or(0);
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        out.push(v as u8);
                    }
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'v' => out.push(11),
                    other => out.push(other),
                }
            }
            fields.push(finish_field(out, &raw[start..i] == null)?);
            if i >= raw.len() {
                break;
            }
            i += 1; // the delimiter
        }
        Ok(fields)
    }

    fn split_csv(&self, raw: &[u8]) -> SqlResult<Vec<Option<String>>> {
        let (d, q, e) = (self.opts.delimiter, self.opts.quote, self.opts.escape);
        let null = self.opts.null.as_bytes();
        let mut fields = Vec::with_capacity(self.ncols);
        let mut i = 0;
        loop {
            let start = i;
            let mut out: Vec<u8> = Vec::new();
            let mut saw_quote = false;
            loop {
                // Outside quotes.
                while i < raw.len() && raw[i] != d && raw[i] != q {
                    out.push(raw[i]);
                    i += 1;
                }
                if i >= raw.len() || raw[i] == d {
                    break;
                }
                // A quoted part.
                saw_quote = true;
                i += 1;
                loop {
                    if i >= raw.len() {
                        return Err(bad_format("unterminated CSV quoted field"));
                    }
                    let c = raw[i];
                    if c == e && i + 1 < raw.len() && (raw[i + 1] == q || raw[i + 1] == e) {
                        out.push(raw[i + 1]);
                        i += 2;
                        continue;
                    }
                    if c == q {
                        i += 1;
                        break;
                    }
                    out.push(c);
                    i += 1;
                }
            }
            let col = fields.len();
            let raw_field = &raw[start..i];
            let is_null = if self.force_not_null.get(col).copied().unwrap_or(false) {
                false
            } else if self.force_null.get(col).copied().unwrap_or(false) {
                out == null
            } else {
                !saw_quote && raw_field == null
            };
            fields.push(finish_field(out, is_null)?);
            if i >= raw.len() {
                break;
            }
            i += 1; // the delimiter
        }
        Ok(fields)
    }
}

/// A decoded field: NULL, or its bytes as text (22021 if they are not UTF-8).
fn finish_field(bytes: Vec<u8>, is_null: bool) -> SqlResult<Option<String>> {
    if is_null {
        return Ok(None);
    }
    String::from_utf8(bytes).map(Some).map_err(|e| invalid_utf8(e.as_bytes()))
}

impl SqlError {
    /// `missing data for column "c"`: the engine fills in the column name (the decoder knows only
    /// positions); the position rides in the message until then.
    fn missing_column(mut self, index: usize) -> SqlError {
        self.message = format!("missing data for column #{index}");
        self
    }
}

/// Fill in the column name of a "missing data for column" error.
pub fn name_missing_column(mut e: SqlError, columns: &[String]) -> SqlError {
    if let Some(i) = e.message.strip_prefix("missing data for column #").and_then(|n| n.parse::<usize>().ok()) {
        e.message = format!("missing data for column \"{}\"", columns.get(i).map(String::as_str).unwrap_or("?"));
    }
    e
}

// ---- COPY TO: encoding -----------------------------------------------------------------------------

/// Writes rows in COPY's text or CSV format.
pub struct Encoder {
    opts: CopyOptions,
    force_quote: Vec<bool>,
}

impl Encoder {
    /// `columns`: the output's column names.
    pub fn new(opts: CopyOptions, columns: &[String]) -> SqlResult<Encoder> {
        let force_quote = match &opts.force_quote {
            None => vec![false; columns.len()],
            Some(list) if list.is_empty() => vec![true; columns.len()],
            Some(list) => {
                let mut flags = vec![false; columns.len()];
                for n in list {
                    let i = columns
                        .iter()
                        .position(|c| c == n)
                        .ok_or_else(|| SqlError::new("42P10", format!("FORCE_QUOTE column \"{n}\" not referenced by COPY")))?;
                    flags[i] = true;
                }
                flags
            }
        };
        Ok(Encoder { opts, force_quote })
    }

    /// The header line (PostgreSQL 15 writes it in text format too), when HEADER is on.
    pub fn header(&self, columns: &[String]) -> Option<Vec<u8>> {
        if !self.opts.header {
            return None;
        }
        let mut out = Vec::new();
        let single = columns.len() == 1;
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                out.push(self.opts.delimiter);
            }
            match self.opts.format {
                Format::Text => self.text_field(&mut out, c),
                Format::Csv => self.csv_field(&mut out, c, false, single),
            }
        }
        out.push(b'\n');
        Some(out)
    }

    /// One row, with its line end.
    pub fn row(&self, out: &mut Vec<u8>, row: &[Value], types: &[DataType]) {
        let single = row.len() == 1;
        for (i, (v, ty)) in row.iter().zip(types).enumerate() {
            if i > 0 {
                out.push(self.opts.delimiter);
            }
            match v.to_text(*ty) {
                None => out.extend_from_slice(self.opts.null.as_bytes()),
                Some(s) => match self.opts.format {
                    Format::Text => self.text_field(out, &s),
                    Format::Csv => self.csv_field(out, &s, self.force_quote[i], single),
                },
            }
        }
        out.push(b'\n');
    }

    fn text_field(&self, out: &mut Vec<u8>, s: &str) {
        let d = self.opts.delimiter;
        for &c in s.as_bytes() {
            match c {
                b'\\' => out.extend_from_slice(b"\\\\"),
                8 => out.extend_from_slice(b"\\b"),
                12 => out.extend_from_slice(b"\\f"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                11 => out.extend_from_slice(b"\\v"),
                c if c == d => {
                    out.push(b'\\');
                    out.push(c);
                }
                c => out.push(c),
            }
        }
    }

    fn csv_field(&self, out: &mut Vec<u8>, s: &str, force: bool, single: bool) {
        let (d, q, e) = (self.opts.delimiter, self.opts.quote, self.opts.escape);
        let quote =
            force || s == self.opts.null || (single && s == "\\.") || s.bytes().any(|c| c == d || c == q || c == b'\n' || c == b'\r');
        if !quote {
            out.extend_from_slice(s.as_bytes());
            return;
        }
        out.push(q);
        for &c in s.as_bytes() {
            if c == q || c == e {
                out.push(e);
            }
            out.push(c);
        }
        out.push(q);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(sql: &str) -> CopyOptions {
        let stmts = crate::sql::parse(sql).unwrap();
        CopyOptions::from_statement(&stmts[0].0).unwrap()
    }

    fn rows(sql: &str, data: &str, ncols: usize) -> SqlResult<Vec<Vec<Option<String>>>> {
        let o = opts(sql);
        let cols: Vec<String> = (0..ncols).map(|i| format!("c{i}")).collect();
        let mut d = Decoder::new(data.as_bytes(), &o, "t", &cols)?;
        let mut out = vec![];
        while let Some(l) = d.next_row()? {
            out.push(l.fields);
        }
        Ok(out)
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    /// A backslash as the data's last byte (checked against PostgreSQL 15 with `\\copy` from a file
    /// without a final newline: it is dropped). It used to step past the end of the data: a panic
    /// found by the `copy_formats` fuzz target.
    #[test]
    fn a_backslash_that_ends_the_data_is_dropped() {
        assert_eq!(rows("COPY t FROM STDIN", "1\tab\\", 2).unwrap(), vec![vec![s("1"), s("ab")]]);
        assert_eq!(rows("COPY t FROM STDIN", "1\tx\n2\t\\", 2).unwrap(), vec![vec![s("1"), s("x")], vec![s("2"), s("")]]);
        assert_eq!(rows("COPY t FROM STDIN", "\\", 1).unwrap(), vec![vec![s("")]]);
    }

    #[test]
    fn options_legacy_and_new() {
        let o = opts("COPY t FROM STDIN WITH CSV HEADER");
        assert_eq!((o.format, o.header, o.delimiter, o.null.as_str()), (Format::Csv, true, b',', ""));
        let o = opts("COPY t FROM stdin");
        assert_eq!((o.format, o.header, o.delimiter, o.null.as_str()), (Format::Text, false, b'\t', "\\N"));
        let o = opts("COPY t FROM STDIN (FORMAT csv, HEADER false, DELIMITER ';', NULL 'x', QUOTE '''', ESCAPE '\\')");
        assert_eq!((o.header, o.delimiter, o.null.as_str(), o.quote, o.escape), (false, b';', "x", b'\'', b'\\'));
        let o = opts("COPY t TO STDOUT WITH DELIMITER '|' NULL 'nil' CSV HEADER QUOTE '*' FORCE QUOTE a, b");
        assert_eq!((o.format, o.delimiter, o.quote), (Format::Csv, b'|', b'*'));
        assert_eq!(o.force_quote, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(opts("COPY t TO STDOUT (FORMAT csv, FORCE_QUOTE *)").force_quote, Some(vec![]));
        assert_eq!(opts("COPY t TO STDOUT CSV FORCE QUOTE *").force_quote, Some(vec![]));
        assert!(opts("copy t from stdin with (freeze on, header 1)").header);
        assert!(!opts("COPY t FROM STDIN (HEADER off)").header);
        let err = |sql: &str| CopyOptions::from_statement(&crate::sql::parse(sql).unwrap()[0].0).unwrap_err().code;
        assert_eq!(err("COPY t FROM STDIN (FORMAT binary)"), "0A000");
        assert_eq!(err("COPY t FROM STDIN BINARY"), "0A000");
        assert_eq!(err("COPY t FROM STDIN (FORMAT xml)"), "22023");
        assert_eq!(err("COPY t FROM STDIN (QUOTE '\"')"), "0A000");
        assert_eq!(err("COPY t FROM STDIN (FORMAT csv, FORCE_QUOTE (a))"), "0A000");
        assert_eq!(err("COPY t FROM STDIN (FORMAT csv, DELIMITER '\"')"), "22023");
        assert_eq!(err("COPY t FROM STDIN (DELIMITER 'a')"), "22023");
        assert_eq!(err("COPY t FROM STDIN (HEADER, HEADER)"), "42601");
    }

    #[test]
    fn text_decoding() {
        let r = rows("COPY t FROM stdin", "1\ta\\tb\n2\t\\N\n3\t\n\\.\nignored\n", 2).unwrap();
        assert_eq!(r, vec![vec![s("1"), s("a\tb")], vec![s("2"), None], vec![s("3"), s("")]]);
        let r = rows("COPY t FROM stdin", "x\\\\y\\n\\101\\x41\\q\r\n", 1).unwrap();
        assert_eq!(r, vec![vec![s("x\\y\nAAq")]]);
        let r = rows("COPY t FROM stdin (DELIMITER ',', NULL '')", "a\\,b,\n", 2).unwrap();
        assert_eq!(r, vec![vec![s("a,b"), None]]);
        // A NULL marker matches the raw field, before escapes.
        let r = rows("COPY t FROM stdin", "\\\\N\n", 1).unwrap();
        assert_eq!(r, vec![vec![s("\\N")]]);
        let e = rows("COPY t FROM stdin", "1\n", 2).unwrap_err();
        assert_eq!((e.code, e.context.as_deref()), ("22P04", Some("COPY t, line 1: \"1\"")));
        assert_eq!(rows("COPY t FROM stdin", "1\t2\t3\n", 2).unwrap_err().message, "extra data after last expected column");
        assert_eq!(rows("COPY t FROM stdin", "1\r\n2\n", 1).unwrap_err().code, "22P04");
        assert_eq!(rows("COPY t FROM stdin", "1\\.\n", 1).unwrap_err().message, "end-of-copy marker corrupt");
        assert_eq!(rows("COPY t FROM stdin", "\\377\n", 1).unwrap_err().code, "22021");
        assert_eq!(rows("COPY t FROM stdin (HEADER)", "h\n1\n", 1).unwrap(), vec![vec![s("1")]]);
    }

    #[test]
    fn csv_decoding() {
        assert_eq!(rows("COPY t FROM STDIN CSV", "1,2\n", 3).unwrap_err().message, "missing data for column #2");
        let r = rows("COPY t FROM STDIN CSV", "1,\"a,b\"\"c\nd\"\n2,\"\"\n3,\n4,x\"y\"z\n\\.\n", 2).unwrap();
        assert_eq!(r, vec![vec![s("1"), s("a,b\"c\nd")], vec![s("2"), s("")], vec![s("3"), None], vec![s("4"), s("xyz")]]);
        let r = rows("COPY t FROM STDIN (FORMAT csv, ESCAPE '\\', FORCE_NOT_NULL (c1), FORCE_NULL (c0))", "\"\",\n", 2).unwrap();
        assert_eq!(r, vec![vec![None, s("")]]);
        let r = rows("COPY t FROM STDIN (FORMAT csv, ESCAPE '\\')", "\"a\\\"b\\\\\"\r\n", 1).unwrap();
        assert_eq!(r, vec![vec![s("a\"b\\")]]);
        assert_eq!(rows("COPY t FROM STDIN CSV", "\"abc\n", 1).unwrap_err().message, "unterminated CSV quoted field");
        assert_eq!(rows("COPY t FROM STDIN CSV HEADER", "a\n1\n", 1).unwrap(), vec![vec![s("1")]]);
    }

    #[test]
    fn encoding() {
        let cols = vec!["a".to_string(), "b,c".to_string()];
        let types = [DataType::Text, DataType::Text];
        let row = [Value::Text("x\t\\\n\"".into()), Value::Null];
        let e = Encoder::new(opts("COPY t TO STDOUT (HEADER)"), &cols).unwrap();
        let mut out = e.header(&cols).unwrap();
        e.row(&mut out, &row, &types);
        assert_eq!(out, b"a\tb,c\nx\\t\\\\\\n\"\t\\N\n");
        let e = Encoder::new(opts("COPY t TO STDOUT CSV HEADER"), &cols).unwrap();
        let mut out = e.header(&cols).unwrap();
        e.row(&mut out, &row, &types);
        e.row(&mut out, &[Value::Text(String::new()), Value::Text("plain".into())], &types);
        assert_eq!(out, b"a,\"b,c\"\n\"x\t\\\n\"\"\",\n\"\",plain\n");
        let e = Encoder::new(opts("COPY t TO STDOUT (FORMAT csv, FORCE_QUOTE (a))"), &cols).unwrap();
        let mut out = vec![];
        e.row(&mut out, &[Value::Text("1".into()), Value::Text("2".into())], &types);
        assert_eq!(out, b"\"1\",2\n");
    }
}
