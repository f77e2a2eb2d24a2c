//! The routes: the seed's five (their paths, methods and JSON shapes kept exactly, see
//! ../shared/seed/README.md), `POST /keys/get` and `POST /keys/delete` for keys too long for
//! a URL, `/health`, `/stats`, `/metrics`, and a cluster node's `/cluster/...`. Each reads
//! and writes through the server's backend (`backend.rs`): a local database or a cluster
//! node.

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
            Route::Cluster => "/cluster",
            Route::Unknown => "unknown",
        }
    }

    /// The methods the route takes, as the `Allow` header of a 405 lists them.
    fn allow(self) -> &'static str {
        match self {
            Route::Keys => "GET, HEAD, PUT, DELETE",
            Route::Batch | Route::KeysGet | Route::KeysDelete => "POST",
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
    if let (Some(token), false) = (
        &state.token,
        matches!(route, Route::Health | Route::Cluster),
    ) {
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
            let body = read_body(request)?;
            get(
                state,
                key_body(&body)?.key.as_bytes(),
                &Query::parse(query)?,
            )
        }
        (Route::KeysDelete, Method::Post) => {
            delete(state, key_body(&read_body(request)?)?.key.as_bytes())
        }
        (Route::Range, Method::Get) => range(state, &Query::parse(query)?),
        (Route::Batch, Method::Post) => batch(state, read_body(request)?),
        (Route::Health, Method::Get) => Ok(state.backend.health()),
        (Route::Stats, Method::Get) => state.backend.stats(),
        (Route::Metrics, Method::Get) => Ok(state.backend.metrics(&state.metrics)),
        (Route::Cluster, _) => state.backend.admin(request, path),
        (route, method) => Err(HttpError::method_not_allowed(method, path, route.allow())),
    }
}

fn success() -> Reply {
    Reply::json(200, &json::success())
}

/// `query` may say how fresh the value must be (`consistency`).
fn get(state: &State, key: &[u8], query: &Query) -> Result<Reply, HttpError> {
    let value = state.backend.get(key, Consistency::from_query(query)?)?;
    match value {
        Some(value) if value.len() > stream::STREAM_VALUES_OVER => {
            Ok(stream::value_reply(key, value))
        }
        value => Ok(Reply::json(200, &json::key_value(key, value.as_deref()))),
    }
}

fn put(state: &State, body: &[u8]) -> Result<Reply, HttpError> {
    let body = key_body(body)?;
    // An empty string is a value like any other (the seed stored it as null).
    let value = body
        .value
        .ok_or_else(|| HttpError::bad_request("missing field \"value\""))?;
    state.backend.put(body.key.as_bytes(), value.as_bytes())?;
    Ok(success())
}

fn delete(state: &State, key: &[u8]) -> Result<Reply, HttpError> {
    state.backend.delete(key)?;
    Ok(success())
}

/// `start_key` inclusive, `end_key` exclusive; with `limit`, at most that many entries and
/// `"next_start_key"` to page on from. Streamed: memory for a piece of the reply, not all.
fn range(state: &State, query: &Query) -> Result<Reply, HttpError> {
    let start = query.required("start_key")?;
    let end = query.required("end_key")?;
    let limit = query.positive("limit")?;
    let consistency = Consistency::from_query(query)?;
    if start >= end {
        return Ok(Reply::json(200, &json::results(&[])));
    }
    state.backend.range(start, end, limit, consistency)
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
