//! The gateway's REST/JSON endpoint (the immugw REST role): every answer is verified by the gateway
//! against its trusted state before it is returned; a failed verification is HTTP 502 with the reason.
//! It has no authentication of its own and reads with the gateway's credentials: bind it to loopback
//! or a private network. Whole transactions (which include roles' SCRAM verifiers) are not served.
//!
//! - `GET /checkpoint`: the server's current checkpoint, verified (signature, consistency) and trusted.
//! - `GET /verified_get?table=T&key=K[&key=K2…][&at=TX]`: a row's proven values (`--key` syntax of
//!   `vouchdb verify row`: an integer, text, or `TYPE:value`).
//! - `GET /proof/inclusion?tx=N`: the inclusion proof of tx N in the gateway's trusted tree, verified.
//! - `GET /proof/consistency?old=N&old_root=HEX`: the consistency proof from your tree (size N, root
//!   HEX) to the gateway's trusted tree, verified against both roots.

use super::Gateway;
use crate::client::proof::{parse_hash, parse_hash_array};
use crate::client::{col, simple_rows, ClientError};
use crate::sql::value::{format_timestamp, Value};
use serde_json::{json, Value as Json};
use std::sync::Arc;

fn query(url: &str) -> (String, Vec<(String, String)>) {
    let (path, q) = url.split_once('?').unwrap_or((url, ""));
    let params = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    (path.to_string(), params)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                Ok(v) => {
                    out.push(v);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn show(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        v => json!(v.to_text(v.natural_type())),
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, ClientError> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| ClientError::Malformed(format!("missing parameter {name}")))
}

fn number(params: &[(String, String)], name: &str) -> Result<u64, ClientError> {
    param(params, name)?.parse().map_err(|_| ClientError::Malformed(format!("parameter {name} is not a number")))
}

async fn answer(gw: &Gateway, path: &str, params: &[(String, String)]) -> Result<Json, ClientError> {
    let mut v = gw.verifier.lock().await;
    match path {
        "/checkpoint" => {
            let cp = v.checkpoint().await?;
            let t = v.state().get(v.origin()).cloned();
            Ok(json!({
                "verified": true, "origin": cp.origin, "tree_size": cp.size, "root": hex::encode(cp.root),
                "checkpoint": t.as_ref().map(|t| t.checkpoint.clone()), "signature": t.map(|t| t.signature),
            }))
        }
        "/verified_get" => {
            let table = param(params, "table")?.to_string();
            let keys =
                params.iter().filter(|(k, _)| k == "key").map(|(_, k)| crate::client::parse_key(k)).collect::<Result<Vec<_>, _>>()?;
            let at = params
                .iter()
                .find(|(k, _)| k == "at")
                .map(|(_, a)| a.parse::<u64>())
                .transpose()
                .map_err(|_| ClientError::Malformed("at is not a number".into()))?;
            match v.verified_get_at(&table, at, &keys).await? {
                None => {
                    Ok(json!({"verified": false, "found": false, "note": "the server says there is no such row; absence is not proven"}))
                }
                Some(r) => Ok(json!({
                    "verified": true, "found": true, "tx": r.tx, "commit_time": format_timestamp(r.commit_time_us as i64),
                    "table_id": r.table_id, "values": r.values.iter().map(show).collect::<Vec<_>>(),
                    "tree_size": r.checkpoint.size, "root": hex::encode(r.checkpoint.root),
                })),
            }
        }
        "/proof/inclusion" => {
            let cp = v.checkpoint().await?;
            let tx = number(params, "tx")?;
            if tx == 0 || tx > cp.size {
                return Err(ClientError::Malformed(format!("tx {tx} is not in the trusted tree of size {}", cp.size)));
            }
            let rows = simple_rows(v.client(), &format!("SELECT leaf_hash, proof FROM inclusion_proof({tx}, {})", cp.size)).await?;
            let row = rows.first().ok_or_else(|| ClientError::Malformed("no proof".into()))?;
            let (leaf, proof) = (parse_hash("leaf_hash", col(row, "leaf_hash")?)?, parse_hash_array("proof", col(row, "proof")?)?);
            crate::verify::inclusion(tx - 1, cp.size, &leaf, &proof, &cp.root).map_err(|e| ClientError::TxInclusion {
                tx,
                size: cp.size,
                err: e,
            })?;
            Ok(json!({"verified": true, "tx": tx, "leaf_index": tx - 1, "tree_size": cp.size, "leaf_hash": hex::encode(leaf),
                "root": hex::encode(cp.root), "proof": proof.iter().map(hex::encode).collect::<Vec<_>>()}))
        }
        "/proof/consistency" => {
            let cp = v.checkpoint().await?;
            let old = number(params, "old")?;
            let old_root = parse_hash("old_root", param(params, "old_root")?)?;
            if old == 0 || old > cp.size {
                return Err(ClientError::Malformed(format!("old must be between 1 and the trusted tree size {}", cp.size)));
            }
            let rows = simple_rows(v.client(), &format!("SELECT proof FROM consistency_proof({old}, {})", cp.size)).await?;
            let row = rows.first().ok_or_else(|| ClientError::Malformed("no proof".into()))?;
            let proof = parse_hash_array("proof", col(row, "proof")?)?;
            // The proof returned is the one verified here, against your root and the trusted one.
            crate::verify::consistency(old, cp.size, &old_root, &cp.root, &proof).map_err(|e| {
                ClientError::Fork(format!("your tree of size {old} is not a prefix of the trusted tree of size {}: {e}", cp.size))
            })?;
            Ok(json!({"verified": true, "old_size": old, "new_size": cp.size, "old_root": hex::encode(old_root),
                "new_root": hex::encode(cp.root), "proof": proof.iter().map(hex::encode).collect::<Vec<_>>()}))
        }
        _ => Err(ClientError::Malformed(format!(
            "no such endpoint {path}: try /checkpoint, /verified_get, /proof/inclusion, /proof/consistency"
        ))),
    }
}

/// Serve the REST endpoint on its own thread; answers run on `rt`.
pub fn serve(addr: &str, gw: Arc<Gateway>, rt: tokio::runtime::Handle) -> std::io::Result<std::net::SocketAddr> {
    let server = tiny_http::Server::http(addr).map_err(|e| std::io::Error::other(format!("REST listener on {addr}: {e}")))?;
    let bound = server.server_addr().to_ip().ok_or_else(|| std::io::Error::other("REST listener has no IP address"))?;
    std::thread::Builder::new().name("gateway-rest".into()).spawn(move || {
        for req in server.incoming_requests() {
            let (path, params) = query(req.url());
            let result = if *req.method() == tiny_http::Method::Get {
                rt.block_on(answer(&gw, &path, &params))
            } else {
                Err(ClientError::Malformed("only GET is supported".into()))
            };
            let (status, body) = match result {
                Ok(j) => (200, j),
                Err(ClientError::Malformed(m)) => (400, json!({"verified": false, "error": m})),
                Err(e @ ClientError::Server(_)) => (400, json!({"verified": false, "error": e.to_string()})),
                Err(e) if e.is_integrity() => (502, json!({"verified": false, "error": e.to_string()})),
                Err(e) => (503, json!({"verified": false, "error": e.to_string()})),
            };
            let ct = tiny_http::Header::from_bytes("Content-Type", "application/json").expect("a valid header");
            let _ = req.respond(tiny_http::Response::from_string(body.to_string() + "\n").with_status_code(status).with_header(ct));
        }
    })?;
    Ok(bound)
}
