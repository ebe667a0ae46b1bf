//! Checkpoints are checked by the real `openssl`, with keys made by `openssl`; bad key files give clear
//! errors naming the file.

use std::path::Path;
use std::process::{Command, Output};
use vouchdb::verify::checkpoint::{parse_public_key_pem, verify_signature, verify_signed_note, Checkpoint};

fn vouchdb(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouchdb")).args(args).arg("--data-dir").arg(data).env("VOUCHDB_LOG", "warn").output().unwrap()
}

fn openssl(args: &[&str]) -> Output {
    let out = Command::new("openssl").args(args).output().expect("openssl is installed (.ci/run installs it)");
    out
}

fn load_some(data: &Path, key: Option<&Path>) {
    let mut args = vec!["load", "--clients", "4", "--txs", "50"];
    let k;
    if let Some(key) = key {
        k = key.to_str().unwrap().to_string();
        args.extend(["--signing-key", &k]);
    }
    let out = vouchdb(&args, data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn checkpoint_files(data: &Path, key: Option<&Path>, out: &Path) -> Output {
    let o = out.to_str().unwrap();
    let mut args = vec!["checkpoint", "--out-dir", o];
    let k;
    if let Some(key) = key {
        k = key.to_str().unwrap().to_string();
        args.extend(["--signing-key", &k]);
    }
    vouchdb(&args, data)
}

fn openssl_verifies(dir: &Path, body: &str) -> bool {
    let pubkey = dir.join("pub.pem");
    let sig = dir.join("sig.der");
    let b = dir.join(body);
    let out = openssl(&["dgst", "-sha256", "-verify", pubkey.to_str().unwrap(), "-signature", sig.to_str().unwrap(), b.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success() && text.contains("Verified OK")
}

#[test]
fn openssl_verifies_checkpoints_signed_with_openssl_made_keys() {
    let t = tempfile::tempdir().unwrap();
    let sec1 = t.path().join("sec1.pem");
    let with_params = t.path().join("params.pem");
    let pkcs8 = t.path().join("pkcs8.pem");
    assert!(openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", sec1.to_str().unwrap()]).status.success());
    assert!(openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-out", with_params.to_str().unwrap()]).status.success());
    assert!(openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", pkcs8.to_str().unwrap()])
        .status
        .success());
    for (i, key) in [&sec1, &with_params, &pkcs8].into_iter().enumerate() {
        let data = t.path().join(format!("data{i}"));
        let out = t.path().join(format!("cp{i}"));
        load_some(&data, Some(key));
        let o = checkpoint_files(&data, Some(key), &out);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(openssl_verifies(&out, "body.txt"), "openssl rejected the checkpoint signed with {}", key.display());
        // The public key we publish is the one openssl derives from the private key.
        let derived = openssl(&["pkey", "-in", key.to_str().unwrap(), "-pubout"]);
        assert_eq!(String::from_utf8_lossy(&derived.stdout).trim(), std::fs::read_to_string(out.join("pub.pem")).unwrap().trim());
        // A changed body no longer verifies.
        let body = std::fs::read_to_string(out.join("body.txt")).unwrap();
        let cp = Checkpoint::parse(&body).unwrap();
        assert_eq!(cp.size, 50);
        std::fs::write(out.join("forged.txt"), body.replace("\n50\n", "\n51\n")).unwrap();
        assert!(!openssl_verifies(&out, "forged.txt"));
        // Our own verifier agrees, and the signed note verifies too.
        let key = parse_public_key_pem(&std::fs::read_to_string(out.join("pub.pem")).unwrap()).unwrap();
        verify_signature(body.as_bytes(), &std::fs::read(out.join("sig.der")).unwrap(), &key).unwrap();
        let note = std::fs::read_to_string(out.join("note.txt")).unwrap();
        assert_eq!(verify_signed_note(&note, &cp.origin, &key).unwrap(), cp);
        assert!(verify_signed_note(&note.replace("\n50\n", "\n51\n"), &cp.origin, &key).is_err());
    }
}

#[test]
fn a_default_key_is_created_once_and_reused() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    load_some(&data, None);
    let o1 = checkpoint_files(&data, None, &t.path().join("a"));
    assert!(o1.status.success());
    let o2 = checkpoint_files(&data, None, &t.path().join("b"));
    assert!(o2.status.success());
    assert!(data.join("signing.key").exists());
    assert_eq!(std::fs::read(t.path().join("a/pub.pem")).unwrap(), std::fs::read(t.path().join("b/pub.pem")).unwrap());
    assert!(openssl_verifies(&t.path().join("b"), "body.txt"));
}

fn key_error(t: &Path, name: &str, content: Option<&[u8]>) -> String {
    let key = t.join(name);
    if let Some(c) = content {
        std::fs::write(&key, c).unwrap();
    }
    let o = checkpoint_files(&t.join("data"), Some(&key), &t.join("out"));
    assert!(!o.status.success(), "{name} was accepted");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains(key.to_str().unwrap()), "error does not name the file: {err}");
    err
}

#[test]
fn bad_key_files_are_named_and_explained() {
    let t = tempfile::tempdir().unwrap();
    let p384 = t.path().join("p384.pem");
    assert!(openssl(&["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", p384.to_str().unwrap()]).status.success());
    let e = key_error(t.path(), "p384.pem", None);
    assert!(e.contains("secp384r1"), "{e}");
    let p384_8 = t.path().join("p384-8.pem");
    assert!(openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", p384_8.to_str().unwrap()])
        .status
        .success());
    let e = key_error(t.path(), "p384-8.pem", None);
    assert!(e.contains("secp384r1"), "{e}");
    let e = key_error(t.path(), "missing.pem", None);
    assert!(e.contains("cannot read"), "{e}");
    let e = key_error(t.path(), "garbage.pem", Some(b"hello"));
    assert!(e.contains("no PEM block"), "{e}");
    let e = key_error(t.path(), "bad.pem", Some(b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"));
    assert!(e.contains("not a valid P-256 private key"), "{e}");
    let rsa = t.path().join("rsa.pem");
    assert!(openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", rsa.to_str().unwrap()]).status.success());
    let e = key_error(t.path(), "rsa.pem", None);
    assert!(e.contains("not a valid P-256 private key"), "{e}");
}
