//! The routes: the seed's five (their paths, methods and JSON shapes kept exactly, see
//! ../shared/seed/README.md), `POST /keys/get` and `POST /keys/delete` for keys too long for
//! a URL, `/health`, `/stats`, `/metrics`, `POST /admin/checkpoint`, and a cluster node's
//! `/cluster/...`. Each reads and writes through the server's backend (`backend.rs`): a
//! local database or a cluster node.
//!
//! Beyond the seed, every byte string can travel: keys in a query string are
//! percent-encoded bytes, `?encoding=base64` makes a reply spell every key and value in
//! base64, and `"encoding":"base64"` in a body says its keys and values are base64.

use serde_json::json;
use tiny_http::{Method, Request};

use super::State;
use super::backend::Consistency;
use super::http::{HttpError, Query, Reply, key_body, read_body};
use super::json;
use super::stream;

/// A route as a metrics label: a fixed set, so unknown paths cannot create series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Keys,
    KeysGet,
    KeysDelete,
    Range,
    Batch,
    Health,
    Stats,
    Metrics,
    Checkpoint,
    Cluster,
    Unknown,
}

impl Route {
    pub fn from_path(path: &str) -> Route {
        match path {
            "/keys" => Route::Keys,
            "/keys/get" => Route::KeysGet,
            "/keys/delete" => Route::KeysDelete,
            "/keys/range" => Route::Range,
            "/keys/batch" => Route::Batch,
            "/health" => Route::Health,
            "/stats" => Route::Stats,
            "/metrics" => Route::Metrics,
            "/admin/checkpoint" => Route::Checkpoint,
            p if p.starts_with("/cluster/") => Route::Cluster,
            _ => Route::Unknown,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Route::Keys => "/keys",
            Route::KeysGet => "/keys/get",
            Route::KeysDelete => "/keys/delete",
            Route::Range => "/keys/range",
            Route::Batch => "/keys/batch",
            Route::Health => "/health",
            Route::Stats => "/stats",
            Route::Metrics => "/metrics",
            Route::Checkpoint => "/admin/checkpoint",
            Route::Cluster => "/cluster",
            Route::Unknown => "unknown",
        }
    }

    /// The methods the route takes, as the `Allow` header of a 405 lists them.
    fn allow(self) -> &'static str {
        match self {
            Route::Keys => "GET, HEAD, PUT, DELETE",
            Route::Batch | Route::KeysGet | Route::KeysDelete | Route::Checkpoint => "POST",
            _ => "GET, HEAD",
        }
    }
}

/// Answers one request. The route comes back with the reply so the caller can count it.
pub(super) fn handle(state: &State, request: &mut Request) -> (Route, Reply) {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let route = Route::from_path(path);
    let reply = dispatch(state, request, route, path, query).unwrap_or_else(|e| {
        let unauthorized = e.status == 401;
        let reply = e.into_reply();
        if unauthorized {
            reply.with_header("WWW-Authenticate", "Bearer realm=\"lsmdb\"")
        } else {
            reply
        }
    });
    (route, reply)
}

fn dispatch(
    state: &State,
    request: &mut Request,
    route: Route,
    path: &str,
    query: &str,
) -> Result<Reply, HttpError> {
    // Health checkers (load balancers, orchestrators) rarely carry credentials; the
    // cluster's admin routes check the cluster's token instead.
    let exempt = matches!(route, Route::Health | Route::Cluster);
    if let (Some(token), false) = (&state.token, exempt) {
        token.check(request)?;
    }
    // HEAD is answered as GET; tiny_http leaves the body out.
    let method = match request.method() {
        Method::Head => &Method::Get,
        m => m,
    };
    match (route, method) {
        (Route::Unknown, _) => Err(HttpError::new(404, format!("no route for {path}"))),
        (Route::Keys, Method::Get) => {
            let query = Query::parse(query)?;
            get(state, query.required("key")?, &query)
        }
        (Route::Keys, Method::Put) => put(state, &read_body(request)?),
        (Route::Keys, Method::Delete) => delete(state, Query::parse(query)?.required("key")?),
        (Route::KeysGet, Method::Post) => {
            let query = Query::parse(query)?;
            get(state, &key_body(&read_body(request)?)?.key, &query)
        }
        (Route::KeysDelete, Method::Post) => delete(state, &key_body(&read_body(request)?)?.key),
        (Route::Range, Method::Get) => range(state, &Query::parse(query)?),
        (Route::Batch, Method::Post) => batch(state, read_body(request)?),
        (Route::Health, Method::Get) => Ok(state.backend.health()),
        (Route::Stats, Method::Get) => state.backend.stats(),
        (Route::Metrics, Method::Get) => Ok(state.backend.metrics(&state.metrics)),
        (Route::Checkpoint, Method::Post) => {
            let from_loopback = request.remote_addr().is_some_and(|a| a.ip().is_loopback());
            checkpoint(state, &read_body(request)?, from_loopback)
        }
        (Route::Cluster, _) => state.backend.admin(request, path),
        (route, method) => Err(HttpError::method_not_allowed(method, path, route.allow())),
    }
}

fn success() -> Reply {
    Reply::json(200, &json::success())
}

/// `query` may say how to spell the reply (`encoding`) and how fresh the value must be
/// (`consistency`).
fn get(state: &State, key: &[u8], query: &Query) -> Result<Reply, HttpError> {
    let encoding = query.encoding()?;
    let value = state.backend.get(key, Consistency::from_query(query)?)?;
    match value {
        Some(value) if value.len() > stream::STREAM_VALUES_OVER => {
            Ok(stream::value_reply(key, value, encoding))
        }
        value => Ok(Reply::json(
            200,
            &json::key_value_as(key, value.as_deref(), encoding),
        )),
    }
}

fn put(state: &State, body: &[u8]) -> Result<Reply, HttpError> {
    let body = key_body(body)?;
    // An empty string is a value like any other (the seed stored it as null).
    let value = body
        .value
        .ok_or_else(|| HttpError::bad_request("missing field \"value\""))?;
    state.backend.put(&body.key, &value)?;
    Ok(success())
}

fn delete(state: &State, key: &[u8]) -> Result<Reply, HttpError> {
    state.backend.delete(key)?;
    Ok(success())
}

/// The seed's form: `start_key` inclusive and `end_key` exclusive, both required. Or, with
/// `prefix` (empty for every key), the keys that start with it, from `start_key` and before
/// `end_key` when they are given (`next_start_key` pages on through a prefix). With
/// `limit`, at most that many entries and `"next_start_key"` to page on from. Streamed:
/// memory for a piece of the reply, not all.
fn range(state: &State, query: &Query) -> Result<Reply, HttpError> {
    let limit = query.positive("limit")?;
    let encoding = query.encoding()?;
    let consistency = Consistency::from_query(query)?;
    let (start, end) = match query.optional("prefix") {
        None => {
            let start = query.required("start_key")?;
            (start.to_vec(), Some(query.required("end_key")?.to_vec()))
        }
        Some(prefix) => {
            let start = query.optional("start_key").unwrap_or_default();
            let end = prefix_end(prefix);
            let end = match (end, query.optional("end_key").filter(|e| !e.is_empty())) {
                (Some(a), Some(b)) => Some(a.min(b.to_vec())),
                (a, b) => a.or(b.map(<[u8]>::to_vec)),
            };
            (start.max(prefix).to_vec(), end)
        }
    };
    if end.as_ref().is_some_and(|end| start >= *end) {
        return Ok(Reply::json(200, &json::results(&[])));
    }
    state
        .backend
        .range(&start, end.as_deref(), limit, encoding, consistency)
}

/// The first key after every key that starts with `prefix`; none when no key is (an empty
/// prefix, or one of 0xFF bytes only).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn batch(state: &State, body: Vec<u8>) -> Result<Reply, HttpError> {
    let (keys, values) = json::parse_batch_json(&body).map_err(HttpError::bad_request)?;
    drop(body);
    // The seed refuses an empty batch, and its clients rely on the 400; the library and the
    // CLI take one as a no-op.
    if keys.is_empty() {
        return Err(HttpError::bad_request(
            "\"keys\" is empty; a batch needs at least one entry",
        ));
    }
    // All of it survives a crash or none.
    let count = state.backend.batch(keys, values)?;
    Ok(Reply::json(200, &json::batch_applied(count)))
}

/// `POST /admin/checkpoint` with `{"dest": "/absolute/path"}`: a checkpoint of the database
/// (`Db::checkpoint`) in `dest`, a new or empty directory on the server's machine, for
/// `lsmdb checkpoint --connect`. Behind the token like every route; a server with no token
/// takes it only from its own machine, since a checkpoint writes files where it is told.
/// A cluster node checkpoints its own replica, holding every write acknowledged before the
/// request (`Backend::checkpoint`).
fn checkpoint(state: &State, body: &[u8], from_loopback: bool) -> Result<Reply, HttpError> {
    if state.token.is_none() && !from_loopback {
        return Err(HttpError::new(
            403,
            "a checkpoint from another machine needs a server started with a token",
        ));
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        dest: String,
    }
    let body: Body = serde_json::from_slice(body).map_err(|e| {
        HttpError::bad_request(format!("expected {{\"dest\": \"/absolute/path\"}}: {e}"))
    })?;
    let dest = std::path::Path::new(&body.dest);
    if !dest.is_absolute() {
        return Err(HttpError::bad_request(
            "\"dest\" must be an absolute path (relative to what, on the server?)",
        ));
    }
    state.backend.checkpoint(dest)?;
    // Opened as any reader would, which checks the copy and counts what it holds.
    let options = crate::Options::default().create_if_missing(false);
    let copy = crate::Db::open_read_only(dest, options).map_err(HttpError::engine)?;
    let stats = copy.stats();
    Ok(Reply::json(
        200,
        &json!({"success": true, "dest": body.dest, "tables": stats.tables, "bytes": stats.table_bytes}),
    ))
}
