//! The routes: the seed's five (their paths, methods and JSON shapes kept exactly, see
//! ../shared/seed/README.md), and `/health`, `/stats`, `/metrics`.

use serde_json::{Value, json};
use tiny_http::{Method, Request};

use super::State;
use super::http::{HttpError, Query, Reply, json_object, read_body};
use crate::format;

/// A route as a metrics label: a fixed set, so unknown paths cannot create series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Keys,
    Range,
    Batch,
    Health,
    Stats,
    Metrics,
    Unknown,
}

impl Route {
    fn from_path(path: &str) -> Route {
        match path {
            "/keys" => Route::Keys,
            "/keys/range" => Route::Range,
            "/keys/batch" => Route::Batch,
            "/health" => Route::Health,
            "/stats" => Route::Stats,
            "/metrics" => Route::Metrics,
            _ => Route::Unknown,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Route::Keys => "/keys",
            Route::Range => "/keys/range",
            Route::Batch => "/keys/batch",
            Route::Health => "/health",
            Route::Stats => "/stats",
            Route::Metrics => "/metrics",
            Route::Unknown => "unknown",
        }
    }

    /// The methods the route takes, as the `Allow` header of a 405 lists them.
    fn allow(self) -> &'static str {
        match self {
            Route::Keys => "GET, HEAD, PUT, DELETE",
            Route::Batch => "POST",
            _ => "GET, HEAD",
        }
    }
}

/// Answers one request. The route comes back with the reply so the caller can count it.
pub fn handle(state: &State, request: &mut Request) -> (Route, Reply) {
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
    // Health checkers (load balancers, orchestrators) rarely carry credentials.
    if let (Some(token), false) = (&state.token, route == Route::Health) {
        token.check(request)?;
    }
    // HEAD is answered as GET; tiny_http leaves the body out.
    let method = match request.method() {
        Method::Head => &Method::Get,
        m => m,
    };
    match (route, method) {
        (Route::Unknown, _) => Err(HttpError::new(404, format!("no route for {path}"))),
        (Route::Keys, Method::Get) => get(state, &Query::parse(query)?),
        (Route::Keys, Method::Put) => put(state, &read_body(request, state.body_limits)?),
        (Route::Keys, Method::Delete) => delete(state, &Query::parse(query)?),
        (Route::Range, Method::Get) => range(state, &Query::parse(query)?),
        (Route::Batch, Method::Post) => batch(state, &read_body(request, state.body_limits)?),
        (Route::Health, Method::Get) => Ok(health(state)),
        (Route::Stats, Method::Get) => {
            let stats = serde_json::to_value(state.db.stats())
                .map_err(|e| HttpError::new(500, format!("cannot encode stats: {e}")))?;
            Ok(Reply::json(200, &stats))
        }
        (Route::Metrics, Method::Get) => {
            Ok(Reply::metrics(state.metrics.render(&state.db.stats())))
        }
        (route, method) => Err(HttpError::method_not_allowed(method, path, route.allow())),
    }
}

fn success() -> Reply {
    Reply::json(200, &json!({"success": true}))
}

fn get(state: &State, query: &Query) -> Result<Reply, HttpError> {
    let key = query.required("key")?;
    let value = state.db.get(key).map_err(HttpError::engine)?;
    Ok(Reply::json(200, &format::key_value(key, value.as_deref())))
}

fn put(state: &State, body: &[u8]) -> Result<Reply, HttpError> {
    let obj = json_object(body)?;
    let key = match obj.get("key") {
        None => return Err(HttpError::bad_request("missing field \"key\"")),
        Some(Value::String(k)) if k.is_empty() => {
            return Err(HttpError::bad_request("\"key\" must not be empty"));
        }
        Some(Value::String(k)) => k,
        Some(_) => return Err(HttpError::bad_request("\"key\" must be a string")),
    };
    // An empty string is a value like any other (the seed stored it as null).
    let value = match obj.get("value") {
        None => return Err(HttpError::bad_request("missing field \"value\"")),
        Some(Value::String(v)) => v,
        Some(_) => return Err(HttpError::bad_request("\"value\" must be a string")),
    };
    state.db.put(key, value).map_err(HttpError::engine)?;
    Ok(success())
}

fn delete(state: &State, query: &Query) -> Result<Reply, HttpError> {
    let key = query.required("key")?;
    state.db.delete(key).map_err(HttpError::engine)?;
    Ok(success())
}

fn range(state: &State, query: &Query) -> Result<Reply, HttpError> {
    let start = query.required("start_key")?;
    let end = query.required("end_key")?;
    if start >= end {
        return Ok(Reply::json(200, &format::results(&[])));
    }
    let pairs = state
        .db
        .range(start, end)
        .and_then(|iter| iter.collect::<lsmdb::Result<Vec<_>>>())
        .map_err(HttpError::engine)?;
    Ok(Reply::json(200, &format::results(&pairs)))
}

fn batch(state: &State, body: &[u8]) -> Result<Reply, HttpError> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| HttpError::bad_request(format!("malformed JSON: {e}")))?;
    let entries = format::parse_batch_json(&body).map_err(HttpError::bad_request)?;
    // The seed refuses an empty batch, and its clients rely on the 400; the library and the
    // CLI take one as a no-op.
    if entries.is_empty() {
        return Err(HttpError::bad_request(
            "\"keys\" is empty; a batch needs at least one entry",
        ));
    }
    // One WAL record and one sync for the whole batch: all of it survives a crash or none.
    state
        .db
        .write(&format::to_batch(&entries))
        .map_err(HttpError::engine)?;
    Ok(Reply::json(
        200,
        &json!({"success": true, "count": entries.len()}),
    ))
}

/// 200 while the engine takes writes and serves reads; 503 with the reason once a failure
/// has stopped writes, or while reads of a table fail for a reason that is not the client's
/// (the table unreadable or damaged).
fn health(state: &State) -> Reply {
    let stats = state.db.stats();
    match stats.writes_stopped.or(stats.reads_failing) {
        None => Reply::json(200, &json!({"health": "true"})),
        Some(reason) => Reply::json(503, &json!({"health": "false", "error": reason})),
    }
}
