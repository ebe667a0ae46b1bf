//! Every seed (`fuzz/seeds/<target>/`) and every input a fuzzer found a bug with
//! (`fuzz/regressions/<target>/`) through the same entry points the cargo-fuzz targets call
//! (`vouchdb::fuzzing`, docs/FUZZING.md): each must be answered without a panic.
//!
//! `cargo test --release --test fuzz_regressions -- --ignored write_seeds` rewrites the seeds from
//! the real encoders (pgwire frames as postgres-protocol writes them, signed checkpoints, proofs, bundles,
//! entries, leaves, rows, catalog definitions, provenance records).

use std::path::{Path, PathBuf};

/// A target's name and its entry point.
type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 5] = [
    ("sql_frontend", vouchdb::fuzzing::sql_frontend),
    ("pgwire_frame", vouchdb::fuzzing::pgwire_frame),
    ("proofs_checkpoints", vouchdb::fuzzing::proofs_checkpoints),
    ("canonical_decoders", vouchdb::fuzzing::canonical_decoders),
    ("copy_formats", vouchdb::fuzzing::copy_formats),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    out.retain(|p| p.is_file());
    out.sort();
    out
}

#[test]
fn seeds_and_regressions_do_not_panic() {
    let mut ran = 0;
    for (target, run) in TARGETS {
        let seeds = files(&fuzz_dir().join("seeds").join(target));
        assert!(!seeds.is_empty(), "no seeds for {target}");
        for path in seeds.iter().chain(&files(&fuzz_dir().join("regressions").join(target))) {
            let data = std::fs::read(path).unwrap();
            if let Err(panic) = std::panic::catch_unwind(|| run(&data)) {
                let msg = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
                panic!("{target}: {} panicked: {}", path.display(), msg.unwrap_or_default());
            }
            ran += 1;
        }
    }
    eprintln!("{ran} inputs");
}

// ---- seeds ------------------------------------------------------------------------------------------

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = fuzz_dir().join("seeds").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), data).unwrap();
}

fn sql_seeds() {
    let statements = [
        ("select_join", "SELECT t.id, t.v, u.v FROM t LEFT JOIN u ON u.t_id = t.id WHERE t.id = $1 ORDER BY 2 LIMIT 10"),
        ("aggregate", "SELECT v, count(*), sum(n), max(ts) FROM t GROUP BY v HAVING count(*) > 1"),
        ("cte_union", "WITH x AS (SELECT id FROM t WHERE v LIKE 'a%') SELECT id FROM x UNION ALL SELECT id FROM u"),
        ("subquery", "SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.t_id = t.id AND u.v IN (1, 2, $1))"),
        ("insert_returning", "INSERT INTO t (id, v, n) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET v = excluded.v RETURNING id, n"),
        ("update", "UPDATE u SET v = v + 1, tags = array_append(tags, 'z') WHERE id BETWEEN $1 AND $1 + 10 RETURNING *"),
        ("delete", "DELETE FROM k WHERE a = $1 AND b > 3 RETURNING a"),
        ("as_of", "SELECT * FROM t AS OF TX 3 WHERE id = 1"),
        ("proof_functions", "SELECT * FROM verified_get('t', 1); SELECT * FROM vouch_txs(1, 3)"),
        ("catalog", "SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid WHERE c.relname = 'w'"),
        ("casts_json", "SELECT j->>'a', j #> '{a,1}', arr[1], '2026-01-01'::date + 1, n::text::numeric(5,1) FROM t"),
        ("window_case", "SELECT id, CASE WHEN ok THEN 'y' ELSE coalesce(c, 'n') END, row_number() OVER (ORDER BY id) FROM t"),
        ("views_sequences", "SELECT nextval('s'), currval('s'), * FROM w JOIN agg ON agg.v = w.v"),
        ("ddl_mix", "BEGIN; CREATE TABLE z (a INT PRIMARY KEY); ALTER SEQUENCE s RESTART WITH 3; COMMIT"),
        ("policy", "CREATE POLICY p FOR app ALLOW 'INSERT INTO t VALUES ($1, $2)' MAX ROWS 1"),
        ("copy_explain", "EXPLAIN SELECT * FROM t WHERE v = 'a'; COPY t TO STDOUT WITH (FORMAT csv, FORCE_QUOTE *)"),
    ];
    for (name, sql) in statements {
        write("sql_frontend", name, sql.as_bytes());
    }
}

fn pgwire_seeds() {
    use bytes::BytesMut;
    use postgres_protocol::message::frontend;
    use postgres_protocol::IsNull;
    let mut b = BytesMut::new();
    frontend::startup_message([("user", "admin"), ("database", "vouchdb"), ("application_name", "psql")], &mut b).unwrap();
    write("pgwire_frame", "startup", &[&[0u8][..], &b].concat());
    let mut b = BytesMut::new();
    frontend::ssl_request(&mut b);
    write("pgwire_frame", "ssl_request", &[&[0u8][..], &b].concat());
    let mut b = BytesMut::new();
    frontend::cancel_request(42, 7, &mut b);
    write("pgwire_frame", "cancel_request", &[&[0u8][..], &b].concat());

    let mut b = BytesMut::new();
    frontend::sasl_initial_response("SCRAM-SHA-256", b"n,,n=,r=rOprNGfwEbeRWgbNEkqO", &mut b).unwrap();
    frontend::password_message(b"secret", &mut b).unwrap();
    write("pgwire_frame", "auth", &[&[1u8][..], &b].concat());

    let mut b = BytesMut::new();
    frontend::query("SELECT 1; SELECT * FROM t", &mut b).unwrap();
    frontend::terminate(&mut b);
    write("pgwire_frame", "simple_query", &[&[1u8][..], &b].concat());

    // Parse, Bind (text and binary parameters), Describe, Execute, Sync; mode byte 7: three
    // parameters whose types start at Int2 (see `fuzzing::param_type`).
    let mut b = BytesMut::new();
    frontend::parse("s1", "INSERT INTO t (id, v, n) VALUES ($1, $2, $3)", [23, 25, 1700], &mut b).unwrap();
    let values: [Option<&[u8]>; 3] = [Some(&[0, 7]), Some(&[0, 0, 0, 9]), None];
    frontend::bind(
        "",
        "s1",
        [1],
        values,
        |v, buf| match v {
            Some(v) => {
                buf.extend_from_slice(v);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        },
        [0],
        &mut b,
    )
    .map_err(|_| "bind")
    .unwrap();
    frontend::describe(b'P', "", &mut b).unwrap();
    frontend::execute("", 0, &mut b).unwrap();
    frontend::close(b'S', "s1", &mut b).unwrap();
    frontend::sync(&mut b);
    write("pgwire_frame", "extended_binary", &[&[7u8][..], &b].concat());

    let mut b = BytesMut::new();
    frontend::parse("", "SELECT $1::timestamptz, $2::jsonb, $3::int[]", [], &mut b).unwrap();
    let values = ["2026-01-02 03:04:05+00", "{\"a\": [1, 2.50]}", "{1,NULL,3}"];
    frontend::bind(
        "p",
        "",
        [0],
        values,
        |v, buf| {
            buf.extend_from_slice(v.as_bytes());
            Ok(IsNull::No)
        },
        [1],
        &mut b,
    )
    .map_err(|_| "bind")
    .unwrap();
    frontend::execute("p", 10, &mut b).unwrap();
    frontend::flush(&mut b);
    frontend::sync(&mut b);
    // Mode 25: types start at 12 (Timestamptz), then Uuid... (text form).
    write("pgwire_frame", "extended_text", &[&[25u8][..], &b].concat());
}

/// One field of a `proofs_checkpoints` input per element, joined with 0xFF.
fn fields(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.join(&[0xFFu8][..])
}

fn proof_seeds() {
    use p256::ecdsa::signature::Signer;
    use vouchdb::ledger::format::{entries_root, provenance_hash, Entry, LeafData};
    use vouchdb::merkle::reference;
    use vouchdb::verify::checkpoint::{note_key_id, signed_note, Checkpoint};
    use vouchdb::verify::leaf_hash;
    // The key the harness signs with.
    let sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let vk = *sk.verifying_key();
    let pem = p256::pkcs8::EncodePublicKey::to_public_key_pem(&vk, Default::default()).unwrap();
    let _ = note_key_id(&vk);
    // A transaction of three entries, tx 3 of a log of five.
    let key = vouchdb::sql::value::encode_key(&[vouchdb::sql::Value::Int(1)]).unwrap();
    let row = vouchdb::sql::value::encode_row(1, &[vouchdb::sql::Value::Int(1), vouchdb::sql::Value::Text("a".into())]);
    let entries: Vec<Vec<u8>> = vec![
        Entry::put(1000, key.clone(), row).encode(),
        Entry::delete(1000, b"\x02\x80\0\0\0\0\0\0\x02".to_vec()).encode(),
        Entry::put(1001, b"k".to_vec(), b"v".to_vec()).encode(),
    ];
    let provenance = vouchdb::sql::provenance::Provenance::simple("admin", vec!["INSERT INTO t VALUES (1, 'a')".into()]).encode();
    let leaf_of = |tx: u64| LeafData {
        tx,
        commit_time_us: 1_700_000_000_000_000 + tx,
        client_time_us: 0,
        entry_count: entries.len() as u32,
        entries_root: entries_root(&entries),
        provenance_hash: provenance_hash(&provenance),
        state_root: None,
    };
    let leaves: Vec<[u8; 32]> = (1..=5).map(|tx| leaf_of(tx).hash()).collect();
    let root = reference::root(&leaves);
    let cp = Checkpoint { origin: "vouchdb/fuzz".into(), size: 5, root };
    let body = cp.body();
    let sig: p256::ecdsa::Signature = sk.sign(body.as_bytes());
    let der = sig.to_der().as_bytes().to_vec();
    let note = signed_note(&body, &cp.origin, &vk, &der);
    let leaf = leaf_of(3).encode();
    let entry_hashes: Vec<[u8; 32]> = entries.iter().map(|e| leaf_hash(e)).collect();
    let hex_array = |hs: &[[u8; 32]]| format!("{{{}}}", hs.iter().map(hex::encode).collect::<Vec<_>>().join(","));
    let row_proof = vouchdb::client::proof::RowProof {
        tx: 3,
        entry_index: 0,
        entry: entries[0].clone(),
        entry_proof: reference::inclusion_path(0, &entry_hashes),
        leaf: leaf.clone(),
        tx_proof: reference::inclusion_path(2, &leaves),
        tree_size: 5,
        root,
        checkpoint: vouchdb::client::proof::SignedBody { body: body.clone(), signature: base64_encode(&der) },
    };
    row_proof.verify(&vk, "vouchdb/fuzz", Some(&key)).expect("the seed row proof verifies");
    let bundle = vouchdb::client::bundle::render(&row_proof, &vk).unwrap();
    let no_ff = |b: &[u8]| if b.contains(&0xFF) { Vec::new() } else { b.to_vec() };
    let parts = |flags: u8| {
        vec![
            vec![flags, 12, 3, 5, 1, 7, 1, 4, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 5],
            reference::consistency_proof(2, &leaves).concat(),
            body.clone().into_bytes(),
            no_ff(&der),
            cp.origin.clone().into_bytes(),
            note.clone().into_bytes(),
            pem.clone().into_bytes(),
            b"int:1".to_vec(),
            b"3".to_vec(),
            b"0".to_vec(),
            hex::encode(&entries[0]).into_bytes(),
            hex_array(&row_proof.entry_proof).into_bytes(),
            hex::encode(&leaf).into_bytes(),
            hex_array(&row_proof.tx_proof).into_bytes(),
            b"5".to_vec(),
            hex::encode(root).into_bytes(),
            Vec::new(),
            hex::encode(&key).into_bytes(),
            format!("{{{}}}", entries.iter().map(hex::encode).collect::<Vec<_>>().join(",")).into_bytes(),
            provenance.clone(),
            bundle.clone().into_bytes(),
        ]
    };
    // The first byte: bit 0 signs, the rest picks the group of checks (`fuzzing::proofs_checkpoints`).
    for (group, name) in ["merkle", "checkpoint_note", "row", "tx", "bundle"].iter().enumerate() {
        write("proofs_checkpoints", &format!("{name}_signed"), &fields(&parts(1 | (group as u8) << 1)));
        write("proofs_checkpoints", &format!("{name}_as_given"), &fields(&parts((group as u8) << 1)));
    }
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn canonical_seeds() {
    use vouchdb::ledger::format::{Entry, LeafData, Reference};
    use vouchdb::sql::{DataType, Value};
    write("canonical_decoders", "entry_put", &Entry::put(1000, b"\x02\x80\0\0\0\0\0\0\x01".to_vec(), b"row".to_vec()).encode());
    write("canonical_decoders", "entry_delete", &Entry::delete(2, b"admin".to_vec()).encode());
    let mut r = Entry::put(1000, b"k".to_vec(), Vec::new());
    r.flags = vouchdb::ledger::format::FLAG_REFERENCE;
    r.reference = Some(Reference { table: 1001, key: b"r".to_vec(), tx: 9 });
    write("canonical_decoders", "entry_reference", &r.encode());
    let leaf = LeafData {
        tx: 7,
        commit_time_us: 1_700_000_000_000_000,
        client_time_us: 1_700_000_000_000_001,
        entry_count: 2,
        entries_root: [1; 32],
        provenance_hash: [2; 32],
        state_root: Some([3; 32]),
    };
    write("canonical_decoders", "leaf_state_root", &leaf.encode());
    write("canonical_decoders", "leaf", &LeafData { state_root: None, ..leaf }.encode());
    let row = [
        Value::Null,
        Value::Bool(true),
        Value::Int(-5),
        Value::Float(0.25),
        Value::parse("12.50", DataType::Numeric).unwrap(),
        Value::NumericNaN,
        Value::Text("héllo".into()),
        Value::Bytea(vec![0, 255]),
        Value::parse("2026-01-02 03:04:05", DataType::Timestamp).unwrap(),
        Value::parse("2026-01-02 03:04:05+00", DataType::Timestamptz).unwrap(),
        Value::parse("2026-01-02", DataType::Date).unwrap(),
        Value::parse("00000000-0000-0000-0000-000000000001", DataType::Uuid).unwrap(),
        Value::parse("{\"a\": [1, 2.50, null]}", DataType::Jsonb).unwrap(),
        Value::parse("{1,NULL,3}", DataType::array_of(DataType::Int4)).unwrap(),
    ];
    write("canonical_decoders", "row_all_types", &vouchdb::sql::value::encode_row(3, &row));
    let key = vouchdb::sql::value::encode_key(&[Value::Text("a\0b".into()), Value::Int(1)]).unwrap();
    write("canonical_decoders", "pk_prefix", &vouchdb::ledger::keys::pk_prefix(1000, &key));
    let mut p = vouchdb::sql::provenance::Provenance::simple("app", vec!["INSERT INTO t VALUES ($1)".into()]);
    p.params = vec![vec![Some("1".into())]];
    p.snapshots = vec![4];
    write("canonical_decoders", "provenance", &p.encode_with_copy_data(&[std::sync::Arc::new(b"1\n".to_vec())]));
    // Catalog definitions as the engine stores them.
    let dir = std::env::temp_dir().join(format!("vouchdb-seeds-{}", std::process::id()));
    let ledger = vouchdb::ledger::Ledger::open(dir.join("store"), vouchdb::ledger::Options { sync: false, ..Default::default() }).unwrap();
    let sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let signer = vouchdb::signing::CheckpointSigner::new(sk, "vouchdb/seeds".into(), dir.join("k")).unwrap();
    let engine = vouchdb::sql::Engine::new(std::sync::Arc::new(ledger), std::sync::Arc::new(signer)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut s = vouchdb::sql::Session::new("admin");
    rt.block_on(async {
        for sql in [
            "CREATE TABLE t (id INT PRIMARY KEY, v TEXT NOT NULL DEFAULT 'x', n NUMERIC(8,2) CHECK (n > 0), tags TEXT[])",
            "CREATE TABLE u (id SERIAL PRIMARY KEY, t_id INT REFERENCES t (id), g UUID UNIQUE)",
            "CREATE INDEX t_v ON t (v)",
            "CREATE VIEW w AS SELECT id, v FROM t",
            "CREATE SEQUENCE s",
        ] {
            for (stmt, text) in vouchdb::sql::parse(sql).unwrap() {
                engine.execute(&mut s, &stmt, &text, &[]).await.unwrap();
            }
        }
    });
    let c = engine.catalog();
    write("canonical_decoders", "table_def", &serde_json::to_vec(&c.tables["t"]).unwrap());
    write("canonical_decoders", "table_def_fk", &serde_json::to_vec(&c.tables["u"]).unwrap());
    write("canonical_decoders", "view_def", &serde_json::to_vec(&c.views["w"]).unwrap());
    write("canonical_decoders", "sequence_def", &serde_json::to_vec(&c.sequences["s"]).unwrap());
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "rewrites fuzz/seeds; run by hand after a format change"]
fn write_seeds() {
    sql_seeds();
    pgwire_seeds();
    proof_seeds();
    canonical_seeds();
    copy_seeds();
}

/// COPY options (the first line) and data in each format and with each option PostgreSQL 15 accepts.
fn copy_seeds() {
    let seeds: [(&str, &str); 10] = [
        ("text", "\n1\tann\t\\N\n2\ta\\tb\t\\x41\n\\.\n"),
        ("text_header", "WITH (HEADER true)\na\tb\tc\n1\t2\t3\n"),
        ("text_delimiter_null", "WITH (DELIMITER '|', NULL 'nil')\n1|nil|x\\|y\n"),
        ("csv", "CSV\n1,\"a,b\",\"\"\n2,,\"multi\nline\"\n"),
        ("csv_header", "WITH (FORMAT csv, HEADER true)\na,b,c\n1,2,3\n\\.\n"),
        ("csv_quote_escape", "WITH (FORMAT csv, QUOTE '''', ESCAPE '\\')\n1,'it\\'s',x\n"),
        ("csv_force", "WITH (FORMAT csv, FORCE_NOT_NULL (b), FORCE_NULL (c))\n1,,\"\"\n"),
        ("csv_legacy", "CSV HEADER DELIMITER ';' NULL 'NULL'\na;b;c\n1;NULL;\"NULL\"\n"),
        ("crlf", "CSV\r\n1,2,3\r\n4,5,6\r\n"),
        ("text_cr", "\n1\t2\t3\r4\t5\t6\r"),
    ];
    for (name, input) in seeds {
        write("copy_formats", name, input.as_bytes());
    }
}
