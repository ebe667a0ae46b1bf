//! Mutual TLS (`--tls-client-ca`): certificates made by openssl here, the real `psql` as the client.
//! A valid certificate logs in as the role it names, with no password, and its fingerprint is in the
//! provenance record; an expired certificate, one from another CA, none at all, a plain connection, a
//! certificate for another role and one for a role that does not exist are each refused with a clear
//! message. A subjectAltName identity with a map file maps a certificate to a role.

mod common;

use common::Server;
use std::path::Path;
use std::process::{Command, Output};

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl").current_dir(dir).args(args).output().unwrap();
    assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// A self-signed P-256 certificate `name.crt`/`name.key` for CN `cn` (a CA, or the server's).
fn self_signed(dir: &Path, name: &str, cn: &str) {
    let (key, crt, subj) = (format!("{name}.key"), format!("{name}.crt"), format!("/CN={cn}"));
    let args =
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", &key, "-out", &crt, "-subj", &subj];
    openssl(dir, &[&args[..], &["-days", "30"]].concat());
}

/// A client certificate `name.crt`/`name.key` for subject CN `cn` and SAN email `email`, signed by
/// `ca`, valid for `days` (-1: already expired).
fn make_client(dir: &Path, name: &str, cn: &str, email: &str, ca: &str, days: &str) {
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=email:{email}\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={cn}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            days,
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
    // libpq refuses a private key readable by others.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join(format!("{name}.key")), std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn make_pki(dir: &Path) {
    self_signed(dir, "ca", "ca");
    self_signed(dir, "otherca", "otherca");
    self_signed(dir, "server", "localhost");
    make_client(dir, "admin", "admin", "ops@example.com", "ca", "30");
    make_client(dir, "app", "app", "app@example.com", "ca", "30");
    make_client(dir, "expired", "admin", "ops@example.com", "ca", "-1");
    make_client(dir, "foreign", "admin", "ops@example.com", "otherca", "30");
}

fn server(extra: &[&str]) -> Server {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    Server::start_with(move |dir| {
        make_pki(dir);
        std::fs::write(dir.join("map"), "# certificate identity → role\n\"ops@example.com\"  admin  # the operators\n").unwrap();
        let p = |f: &str| dir.join(f).display().to_string();
        let mut args =
            vec!["--tls-cert".into(), p("server.crt"), "--tls-key".into(), p("server.key"), "--tls-client-ca".into(), p("ca.crt")];
        args.extend(extra.iter().map(|a| a.replace("{dir}", &dir.display().to_string())));
        args
    })
}

/// Run psql with `conn` (added to host, port, dbname) and a command; no password is ever given.
fn psql(s: &Server, conn: &str, sql: &str) -> Output {
    let d = s.dir.path().display();
    let conn = conn.replace("{dir}", &d.to_string());
    Command::new("psql")
        .arg(format!("host=127.0.0.1 port={} dbname=vouchdb {conn}", s.port))
        .args(["-X", "-At", "-c", sql])
        .env("PGPASSWORD", "")
        .env_remove("PGPASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "psql failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn refused(o: &Output) -> String {
    assert!(!o.status.success(), "psql succeeded: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn cert(name: &str) -> String {
    format!("sslmode=require sslcert={{dir}}/{name}.crt sslkey={{dir}}/{name}.key")
}

#[test]
fn client_certificates_authenticate_roles_and_bad_ones_are_refused() {
    let s = server(&[]);
    // A valid certificate for CN=admin: logged in as admin, no password asked.
    let admin = format!("user=admin {}", cert("admin"));
    assert_eq!(ok(&psql(&s, &admin, "SELECT current_user")), "admin");
    ok(&psql(&s, &admin, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"));
    // The provenance record names the method and the certificate's SHA-256 fingerprint.
    let record = ok(&psql(&s, &admin, "SELECT record FROM vouch_log ORDER BY tx DESC LIMIT 1"));
    let fp = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(s.dir.path().join("admin.crt"))
        .output()
        .unwrap();
    let fp = String::from_utf8_lossy(&fp.stdout).split('=').nth(1).unwrap().trim().replace(':', "").to_lowercase();
    assert!(record.contains(&format!(r#""auth":{{"method":"cert","tls":true,"client_cert":"{fp}"}}"#)), "{record}");

    // Each refusal says why.
    let e = refused(&psql(&s, &format!("user=app {}", cert("admin")), "SELECT 1"));
    assert!(e.contains(r#"certificate authentication failed for user "app": the client certificate is for role "admin""#), "{e}");
    let e = refused(&psql(&s, "user=admin sslmode=require sslcert=/nonexistent sslkey=/nonexistent", "SELECT 1"));
    assert!(e.contains("connection requires a client certificate signed by the server's client CA; none was presented"), "{e}");
    let e = refused(&psql(&s, "user=admin sslmode=disable", "SELECT 1"));
    assert!(e.contains("this server accepts TLS connections with a client certificate only"), "{e}");
    let e = refused(&psql(&s, &format!("user=admin {}", cert("expired")), "SELECT 1"));
    assert!(e.contains("certificate expired"), "{e}");
    let e = refused(&psql(&s, &format!("user=admin {}", cert("foreign")), "SELECT 1"));
    assert!(e.contains("unknown ca"), "{e}");
    let e = refused(&psql(&s, &format!("user=app {}", cert("app")), "SELECT 1"));
    assert!(e.contains(r#"certificate authentication failed: role "app" does not exist"#), "{e}");
    // Once the role exists, its certificate logs it in.
    ok(&psql(&s, &admin, "CREATE USER app"));
    assert_eq!(ok(&psql(&s, &format!("user=app {}", cert("app")), "SELECT current_user")), "app");
    let log = std::fs::read_to_string(s.dir.path().join("server.log")).unwrap();
    assert!(log.contains("TLS handshake refused") && log.contains("Expired"), "{log}");
}

#[test]
fn a_subject_alt_name_maps_to_a_role_through_the_map_file() {
    let s = server(&["--tls-client-identity", "email", "--tls-client-map", "{dir}/map"]);
    assert_eq!(ok(&psql(&s, &format!("user=admin {}", cert("admin")), "SELECT current_user")), "admin");
    let e = refused(&psql(&s, &format!("user=app {}", cert("app")), "SELECT 1"));
    assert!(e.contains(r#"subjectAltName email "app@example.com" is not in the certificate map"#), "{e}");
}
