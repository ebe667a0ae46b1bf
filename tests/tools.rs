//! The migration tools and ORMs applications use, run unchanged against the real server: SQLAlchemy 2 +
//! Alembic (tests/tools/alembic) and Django (tests/tools/django), from the pinned Python virtual
//! environment that tests/tools/setup-python.sh makes, and knex (tests/tools/knex) from the pinned
//! node_modules of tests/tools/setup-node.sh (scripts/setup runs both; so do these tests, and they are
//! idempotent). A missing Python or Node is a failure, never a skip. Each test migrates up, works through
//! the ORM, migrates down to nothing and up again, checks the result over SQL, and verifies the ledger.

mod common;

use std::path::Path;
use std::process::Command;

/// Run the venv's python with `args` in `dir` and the connection in the environment; panics with the
/// tool's output when it fails.
fn run(server: &common::Server, dir: &str, args: &[&str]) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools").join(dir);
    let mut cmd = Command::new(common::runtimes::python());
    cmd.args(args).current_dir(&dir).env("PYTHONDONTWRITEBYTECODE", "1");
    connection_env(&mut cmd, server);
    let out = cmd.output().expect("run the venv's python");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "python {args:?} in {} failed:\n{text}", dir.display());
    text
}

/// The connection settings every tool script reads.
fn connection_env(cmd: &mut Command, server: &common::Server) {
    cmd.env("VOUCHDB_SQLALCHEMY_URL", server.psql_url().replacen("postgresql://", "postgresql+psycopg://", 1))
        .env("VOUCHDB_HOST", "127.0.0.1")
        .env("VOUCHDB_PORT", server.port.to_string())
        .env("VOUCHDB_USER", "admin")
        .env("VOUCHDB_PASSWORD", common::PASSWORD)
        .env("VOUCHDB_DB", "vouchdb");
}

/// Run `node script` in tests/tools/knex with NODE_PATH at the pinned node_modules; panics with the
/// output when it fails.
fn run_node(server: &common::Server, script: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/knex");
    let mut cmd = Command::new("node");
    cmd.arg(script).current_dir(&dir).env("NODE_PATH", common::runtimes::node_modules());
    connection_env(&mut cmd, server);
    let out = cmd.output().expect("run node (Node 20 is part of the machine; a missing runtime is a failure)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "node {script} failed:\n{text}");
    text
}

async fn strings(c: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    c.query(sql, &[]).await.unwrap().iter().map(|r| r.get::<_, String>(0)).collect()
}

async fn count(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alembic_migrations_and_sqlalchemy_orm() {
    let mut server = common::Server::start();
    let alembic = ["-m", "alembic", "-c", "alembic.ini"];
    run(&server, "alembic", &[&alembic[..], &["upgrade", "0001"]].concat());
    // Autogenerate at 0001 finds exactly what 0002 changes (as it does on PostgreSQL 15): reflection of
    // types, lengths, columns and tables is faithful.
    let diff =
        ["add_column book.isbn", "add_table review", "modify_type author.name", "modify_type book.pages", "remove_column book.price"];
    run(&server, "alembic", &[&["autogen.py"][..], &diff].concat());
    let up = run(&server, "alembic", &[&alembic[..], &["upgrade", "head"]].concat());
    assert!(up.contains("Running upgrade 0002 -> 0003"), "{up}");
    // At head the database matches models.py: no difference in columns, types, nullability, defaults,
    // indexes, unique constraints or foreign keys, through autogenerate and `alembic check`.
    run(&server, "alembic", &["autogen.py"]);
    let check = run(&server, "alembic", &[&alembic[..], &["check"]].concat());
    assert!(check.contains("No new upgrade operations detected"), "{check}");
    run(&server, "alembic", &["orm.py"]);
    let down = run(&server, "alembic", &[&alembic[..], &["downgrade", "base"]].concat());
    assert!(down.contains("Running downgrade 0001 -> , "), "{down}");
    let c = server.client().await;
    let left = strings(&c, "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1").await;
    assert_eq!(left, ["alembic_version"]);
    run(&server, "alembic", &[&alembic[..], &["upgrade", "head"]].concat());
    run(&server, "alembic", &["orm.py"]);

    let tables = strings(&c, "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1").await;
    assert_eq!(tables, ["alembic_version", "author", "book", "book_with_author", "review"]);
    assert_eq!(strings(&c, "SELECT version_num::text FROM alembic_version").await, ["0003"]);
    let cols =
        strings(&c, "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'book' ORDER BY ordinal_position").await;
    assert_eq!(cols, ["id", "author_id", "title", "pages", "created", "isbn"]);
    assert_eq!(count(&c, "SELECT count(*) FROM author").await, 2);
    assert_eq!(count(&c, "SELECT sum(pages)::bigint FROM book").await, 450);
    assert_eq!(count(&c, "SELECT count(*) FROM review").await, 2);
    drop(c);
    server.check_ledger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_migrations_and_orm() {
    let mut server = common::Server::start();
    let up = run(&server, "django", &["manage.py", "migrate", "--no-input"]);
    assert!(up.contains("Applying auth.0012_alter_user_first_name_max_length... OK"), "{up}");
    assert!(up.contains("Applying library.0003_constraints_and_m2m... OK"), "{up}");
    run(&server, "django", &["orm_check.py"]);
    let down = run(&server, "django", &["manage.py", "migrate", "--no-input", "library", "zero"]);
    assert!(down.contains("Unapplying library.0001_initial... OK"), "{down}");
    let c = server.client().await;
    assert_eq!(count(&c, "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'library%'").await, 0);
    run(&server, "django", &["manage.py", "migrate", "--no-input"]);
    run(&server, "django", &["orm_check.py"]);

    let applied = strings(&c, "SELECT name::text FROM django_migrations WHERE app = 'library' ORDER BY id").await;
    assert_eq!(applied, ["0001_initial", "0002_alter_fields", "0003_constraints_and_m2m"]);
    assert_eq!(count(&c, "SELECT count(*) FROM library_title_authors").await, 1);
    assert_eq!(count(&c, "SELECT count(*) FROM auth_user_groups").await, 0);
    assert_eq!(count(&c, "SELECT count(*) FROM auth_user").await, 2);
    assert_eq!(count(&c, "SELECT count(*) FROM library_publisher").await, 1);
    assert_eq!(count(&c, "SELECT sum(edition)::bigint FROM library_title").await, 23);
    let ty = strings(
        &c,
        "SELECT data_type::text FROM information_schema.columns WHERE table_name = 'library_title' AND column_name = 'edition'",
    )
    .await;
    assert_eq!(ty, ["bigint"]);
    drop(c);
    server.check_ledger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knex_migrations_and_queries() {
    let mut server = common::Server::start();
    let out = run_node(&server, "run.js");
    assert!(out.contains("knex ok"), "{out}");
    let c = server.client().await;
    let applied = strings(&c, "SELECT name::text FROM knex_migrations ORDER BY id").await;
    assert_eq!(applied, ["20260101000000_customers_orders.js", "20260102000000_alter.js"]);
    let cols =
        strings(&c, "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'kx_customer' ORDER BY ordinal_position")
            .await;
    assert_eq!(cols, ["id", "email", "full_name", "created_at", "updated_at", "phone"]);
    // Two rounds of work, each leaving Ann's two orders (Bob's was deleted by the cascade).
    assert_eq!(count(&c, "SELECT count(*) FROM kx_order").await, 2);
    assert_eq!(count(&c, "SELECT count(*) FROM kx_order WHERE NOT paid").await, 0);
    drop(c);
    server.check_ledger();
}

/// sqlx's migrator (run, undo to nothing, run again; it takes `pg_advisory_lock` around each) and
/// queries through its compile-free API, which describes every statement and reads results in binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_migrator_and_queries() {
    use sqlx::postgres::PgPoolOptions;
    use sqlx::Row;

    let mut server = common::Server::start();
    let url = server.psql_url();
    let pool = PgPoolOptions::new().max_connections(4).connect(&url).await.expect("sqlx connects");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/sqlx/migrations");
    let migrator = sqlx::migrate::Migrator::new(dir).await.expect("read the migrations");
    assert_eq!(migrator.iter().filter(|m| m.migration_type.is_up_migration()).count(), 2);

    async fn work(pool: &sqlx::PgPool) {
        let ann: i64 = sqlx::query("INSERT INTO sx_account (holder, balance) VALUES ($1, $2) RETURNING id")
            .bind("ann")
            .bind(100i64)
            .fetch_one(pool)
            .await
            .unwrap()
            .get("id");
        let bob: i64 =
            sqlx::query_scalar("INSERT INTO sx_account (holder) VALUES ($1) RETURNING id").bind("bob").fetch_one(pool).await.unwrap();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("UPDATE sx_account SET balance = balance - $1 WHERE id = $2").bind(30i64).bind(ann).execute(&mut *tx).await.unwrap();
        sqlx::query("UPDATE sx_account SET balance = balance + $1 WHERE id = $2").bind(30i64).bind(bob).execute(&mut *tx).await.unwrap();
        let t: i32 = sqlx::query_scalar("INSERT INTO sx_transfer (src, dst, amount, memo) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(ann)
            .bind(bob)
            .bind(30i64)
            .bind("rent")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert!(t > 0);
        tx.commit().await.unwrap();
        // A failing transfer: the CHECK refuses a negative balance (23514) and the transaction rolls back.
        let mut tx = pool.begin().await.unwrap();
        let e = sqlx::query("UPDATE sx_account SET balance = balance - 1000 WHERE id = $1").bind(ann).execute(&mut *tx).await.unwrap_err();
        assert_eq!(e.as_database_error().and_then(|d| d.code()).as_deref(), Some("23514"), "{e}");
        tx.rollback().await.unwrap();
        let e = sqlx::query("INSERT INTO sx_account (holder) VALUES ('ann')").execute(pool).await.unwrap_err();
        assert_eq!(e.as_database_error().and_then(|d| d.code()).as_deref(), Some("23505"), "{e}");
        let e = sqlx::query("INSERT INTO sx_transfer (src, dst, amount) VALUES (999999, $1, 1)").bind(bob).execute(pool).await.unwrap_err();
        assert_eq!(e.as_database_error().and_then(|d| d.code()).as_deref(), Some("23503"), "{e}");
        let rows = sqlx::query(
            "SELECT a.holder, a.balance, count(t.id) AS n FROM sx_account a LEFT JOIN sx_transfer t ON t.src = a.id \
             GROUP BY a.holder, a.balance ORDER BY a.holder",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let got: Vec<(String, i64, i64)> = rows.iter().map(|r| (r.get("holder"), r.get("balance"), r.get("n"))).collect();
        assert_eq!(got, [("ann".to_string(), 70, 1), ("bob".to_string(), 30, 0)]);
        let memo: String = sqlx::query_scalar("SELECT memo FROM sx_transfer WHERE src = $1").bind(ann).fetch_one(pool).await.unwrap();
        assert_eq!(memo, "rent");
    }

    migrator.run(&pool).await.expect("migrate up");
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version").fetch_all(&pool).await.unwrap();
    assert_eq!(versions, [20260101000000, 20260102000000]);
    work(&pool).await;
    // Running again applies nothing (the checksums match).
    migrator.run(&pool).await.expect("migrate up again");
    migrator.undo(&pool, 0).await.expect("undo everything");
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'sx_%'").fetch_one(&pool).await.unwrap();
    assert_eq!(left, 0);
    migrator.run(&pool).await.expect("migrate up after undo");
    work(&pool).await;
    pool.close().await;
    server.check_ledger();
}
