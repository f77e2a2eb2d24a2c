//! The bare tiny_http server `scripts/http-load.sh` measures `lsmdb serve` against: the same
//! serving model (each request answered on its connection's thread, `THREADS` at a time)
//! and `GET /keys?key=...` route, answered with a constant JSON body and no engine,
//! routing, auth, metrics or logging. The ratio of the two says what lsmdb's own work per
//! request costs over tiny_http's floor.
//!
//! Usage: cargo run --release --example http_baseline -- [ADDR] [THREADS]

use std::net::TcpListener;
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8081".into());
    let threads: usize = args.next().map_or(Ok(2), |t| t.parse())?;
    let body = br#"{"key":"bench","value":"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"}"#;
    let content_type =
        tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..])
            .map_err(|()| "bad header")?;
    let answer = move |request: tiny_http::Request| {
        let response = if request.url().starts_with("/keys?key=") {
            tiny_http::Response::from_data(&body[..]).with_header(content_type.clone())
        } else {
            tiny_http::Response::from_data(&b"{}"[..]).with_status_code(404)
        };
        let _ = request.respond(response);
    };
    let config = tiny_http::ConnectionConfig {
        handler: Some(Arc::new(answer)),
        handler_slots: threads,
        ..tiny_http::ConnectionConfig::default()
    };
    let server = tiny_http::Server::from_listener_with_config(TcpListener::bind(&addr)?, config)?;
    eprintln!("baseline listening on http://{}", server.server_addr());
    // The connections' threads do the rest.
    loop {
        std::thread::park();
    }
}
