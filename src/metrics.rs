//! Prometheus metrics over HTTP: `GET /metrics` in the text exposition format, served by a small
//! thread of its own so a slow scraper never touches the database's threads.

use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};

/// Serve `registry` at `http://<addr>/metrics` until the process exits. Returns the bound address.
pub fn serve(addr: &str, registry: Arc<Mutex<Registry>>) -> std::io::Result<std::net::SocketAddr> {
    let server = tiny_http::Server::http(addr).map_err(|e| std::io::Error::other(format!("metrics listener on {addr}: {e}")))?;
    let bound = server.server_addr().to_ip().ok_or_else(|| std::io::Error::other("metrics listener has no IP address"))?;
    std::thread::Builder::new().name("metrics".into()).spawn(move || {
        for req in server.incoming_requests() {
            let resp = if req.url() == "/metrics" || req.url().starts_with("/metrics?") {
                let mut body = String::new();
                let encoded = registry.lock().map(|r| prometheus_client::encoding::text::encode(&mut body, &r).is_ok());
                if encoded.unwrap_or(false) {
                    let ct = tiny_http::Header::from_bytes("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
                        .expect("a valid header");
                    tiny_http::Response::from_string(body).with_header(ct)
                } else {
                    tiny_http::Response::from_string("metrics unavailable\n").with_status_code(500)
                }
            } else {
                tiny_http::Response::from_string("not found: try /metrics\n").with_status_code(404)
            };
            let _ = req.respond(resp);
        }
    })?;
    Ok(bound)
}
