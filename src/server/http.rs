//! What every route shares: replies and errors as JSON (whole, or streamed as they are
//! sent), query parameters, and request bodies.

use std::borrow::Cow;
use std::io::Read;

use tiny_http::{Header, Method, Request, Response, ResponseBox};

use super::json::{self, Encoding};

/// The `Server` header of every reply, also of those tiny_http writes itself.
pub const SERVER: &str = concat!("lsmdb/", env!("CARGO_PKG_VERSION"));

/// A reply before it is written: the status, the body and any extra headers.
pub struct Reply {
    pub status: u16,
    body: Body,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
}

/// A reply's body: in memory, or made as the connection's thread sends it, from a reader
/// that holds what it needs (an iterator, a value) and its length when that is known.
enum Body {
    Whole(Vec<u8>),
    Stream(Box<dyn Read + Send>, Option<usize>),
}

impl Reply {
    pub fn json(status: u16, value: &impl serde::Serialize) -> Reply {
        // Serializing our own types to memory cannot fail.
        Reply::json_bytes(status, serde_json::to_vec(value).unwrap_or_default())
    }

    /// A JSON body already serialized.
    pub fn json_bytes(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            body: Body::Whole(body),
            content_type: "application/json",
            headers: Vec::new(),
        }
    }

    /// A 200 JSON body that `reader` produces as it is read: `length` bytes, or, unknown,
    /// sent in chunked encoding.
    pub fn json_stream(reader: impl Read + Send + 'static, length: Option<usize>) -> Reply {
        Reply {
            status: 200,
            body: Body::Stream(Box::new(reader), length),
            content_type: "application/json",
            headers: Vec::new(),
        }
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn metrics(text: String) -> Reply {
        Reply {
            status: 200,
            body: Body::Whole(text.into_bytes()),
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// The body's length, when it is known before it is sent.
    pub fn body_len(&self) -> Option<usize> {
        match &self.body {
            Body::Whole(body) => Some(body.len()),
            Body::Stream(_, length) => *length,
        }
    }

    pub fn into_response(self) -> ResponseBox {
        let response = match self.body {
            // Always `Content-Length` when the length is known, never tiny_http's chunked
            // encoding for bodies over 32 KiB.
            Body::Whole(body) => Response::from_data(body).boxed(),
            Body::Stream(reader, length) => Response::empty(200).with_data(reader, length),
        };
        let mut response = response
            .with_status_code(self.status)
            .with_chunked_threshold(usize::MAX);
        let fixed = [("Content-Type", self.content_type), ("Server", SERVER)];
        for (name, value) in fixed
            .into_iter()
            .chain(self.headers.iter().map(|(n, v)| (*n, v.as_str())))
        {
            // Names and values here are ASCII, which is all tiny_http refuses to take.
            if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                response.add_header(h);
            }
        }
        response
    }
}

/// A request the server refuses: a status and a message that says what is wrong, sent as
/// `{"error":"..."}`, with any more fields after it.
#[derive(Debug)]
pub struct HttpError {
    pub status: u16,
    pub message: String,
    /// More string fields of the body, after `"error"` (a cluster's `"outcome"`).
    pub fields: Vec<(&'static str, String)>,
    /// Headers of the reply: `Allow` for a 405, `Retry-After`, `Location`.
    pub headers: Vec<(&'static str, String)>,
}

impl HttpError {
    pub fn new(status: u16, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            message: message.into(),
            fields: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError::new(400, message)
    }

    pub fn method_not_allowed(method: &Method, path: &str, allow: &'static str) -> HttpError {
        HttpError::new(
            405,
            format!("method {method} is not allowed on {path}; allowed: {allow}"),
        )
        .with_header("Allow", allow)
    }

    /// Only a cluster node's answers carry more fields.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub fn with_field(mut self, name: &'static str, value: impl Into<String>) -> HttpError {
        self.fields.push((name, value.into()));
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> HttpError {
        self.headers.push((name, value.into()));
        self
    }

    /// An engine error: the caller's fault (400) when the engine calls the argument invalid,
    /// unavailable (503) when the engine cannot take writes now, else the server's (500).
    pub fn engine(e: crate::Error) -> HttpError {
        let status = match &e {
            crate::Error::InvalidArgument(_) => 400,
            crate::Error::WritesStopped(_) | crate::Error::ReadOnly(_) | crate::Error::Closed => {
                503
            }
            _ => 500,
        };
        HttpError::new(status, e.to_string())
    }

    pub fn into_reply(self) -> Reply {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.message.into());
        for (name, value) in self.fields {
            body.insert(name.into(), value.into());
        }
        let mut reply = Reply::json(self.status, &body);
        for (name, value) in self.headers {
            reply = reply.with_header(name, value);
        }
        reply
    }
}

/// Decoded `name=value` pairs of a query string, in order.
pub struct Query(Vec<(String, Vec<u8>)>);

impl Query {
    /// Splits on `&` and the first `=` of each pair, then percent-decodes both sides (`+` is a
    /// space, as in HTML forms and Python's `parse_qs`). A malformed escape is an error rather
    /// than a guess.
    pub fn parse(query: &str) -> Result<Query, HttpError> {
        let mut pairs = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = String::from_utf8(percent_decode(name)?)
                .map_err(|_| HttpError::bad_request("a query parameter name is not UTF-8"))?;
            pairs.push((name, percent_decode(value)?));
        }
        Ok(Query(pairs))
    }

    /// The first value of `name`, which must be present and non-empty.
    pub fn required(&self, name: &str) -> Result<&[u8], HttpError> {
        match self.first(name) {
            None => Err(HttpError::bad_request(format!(
                "missing query parameter \"{name}\""
            ))),
            Some((_, v)) if v.is_empty() => Err(HttpError::bad_request(format!(
                "query parameter \"{name}\" must not be empty"
            ))),
            Some((_, v)) => Ok(v),
        }
    }

    /// The first value of `name`, empty or not, if it is there.
    pub fn optional(&self, name: &str) -> Option<&[u8]> {
        self.first(name).map(|(_, v)| v.as_slice())
    }

    /// The `encoding` parameter: how the reply spells keys and values.
    pub fn encoding(&self) -> Result<Encoding, HttpError> {
        Encoding::named(self.optional("encoding")).map_err(HttpError::bad_request)
    }

    /// The first value of `name` as a positive number, if it is there.
    pub fn positive(&self, name: &str) -> Result<Option<usize>, HttpError> {
        let Some((_, v)) = self.first(name) else {
            return Ok(None);
        };
        let n = std::str::from_utf8(v).ok().and_then(|v| v.parse().ok());
        match n {
            Some(n) if n > 0 => Ok(Some(n)),
            _ => Err(HttpError::bad_request(format!(
                "query parameter \"{name}\" must be a positive whole number"
            ))),
        }
    }

    fn first(&self, name: &str) -> Option<&(String, Vec<u8>)> {
        self.0.iter().find(|(n, _)| n == name)
    }
}

fn percent_decode(s: &str) -> Result<Vec<u8>, HttpError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        HttpError::bad_request(format!(
                            "malformed percent-encoding at \"{}\" (write % as %25)",
                            String::from_utf8_lossy(&bytes[i..bytes.len().min(i + 3)])
                        ))
                    })?;
                out.push(byte);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    Ok(out)
}

/// The request's body, which tiny_http has read whole (within `Config::max_body` and
/// `Config::body_timeout`); 411 for a method that carries a body but came with neither
/// `Content-Length` nor chunked encoding.
pub fn read_body(request: &mut Request) -> Result<Vec<u8>, HttpError> {
    let chunked = request
        .headers()
        .iter()
        .any(|h| h.field.equiv("Transfer-Encoding"));
    if request.body_length().is_none() && !chunked {
        return Err(HttpError::new(
            411,
            "a request body needs a Content-Length header (or chunked encoding)",
        ));
    }
    Ok(request.take_body())
}

/// The `{"key": ..., "value": ...}` body of `PUT /keys` (`value` checked by the caller) and
/// the `{"key": ...}` of `POST /keys/get` and `/keys/delete`: the bytes they stand for,
/// base64-decoded when the body says `"encoding":"base64"`.
pub struct KeyBody<'a> {
    pub key: Cow<'a, [u8]>,
    pub value: Option<Cow<'a, [u8]>>,
}

pub fn key_body(body: &[u8]) -> Result<KeyBody<'_>, HttpError> {
    let fields = json::decode_fields(body, "the request body must be a JSON object")
        .map_err(HttpError::bad_request)?;
    let encoding = Encoding::named(fields.encoding.as_deref().map(str::as_bytes))
        .map_err(HttpError::bad_request)?;
    let key = fields
        .key
        .ok_or_else(|| HttpError::bad_request("missing field \"key\""))?;
    let key = bytes_of(key, encoding, "\"key\"")?;
    if key.is_empty() {
        return Err(HttpError::bad_request("\"key\" must not be empty"));
    }
    let value = fields
        .value
        .map(|v| bytes_of(v, encoding, "\"value\""))
        .transpose()?;
    Ok(KeyBody { key, value })
}

/// The bytes a body's string stands for in `encoding`, borrowed when they are its own.
fn bytes_of<'a>(
    text: Cow<'a, str>,
    encoding: Encoding,
    what: &str,
) -> Result<Cow<'a, [u8]>, HttpError> {
    match (encoding, text) {
        (Encoding::Text, Cow::Borrowed(text)) => Ok(Cow::Borrowed(text.as_bytes())),
        (Encoding::Text, Cow::Owned(text)) => Ok(Cow::Owned(text.into_bytes())),
        (Encoding::Base64, text) => encoding
            .decode(&text, what)
            .map(|bytes| Cow::Owned(bytes.into_owned()))
            .map_err(HttpError::bad_request),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_percent_decoded() {
        let q = Query::parse("key=a+b%20c%26d%3De%2Ff&x=%E2%9C%93&key=second&flag").unwrap();
        assert_eq!(q.required("key").unwrap(), b"a b c&d=e/f");
        assert_eq!(q.required("x").unwrap(), "✓".as_bytes());
        assert!(
            q.required("flag")
                .unwrap_err()
                .message
                .contains("must not be empty")
        );
        assert!(q.required("nope").unwrap_err().message.contains("missing"));
    }

    #[test]
    fn malformed_escapes_are_refused() {
        for bad in ["key=100%", "key=%4", "key=%zz", "key=%é"] {
            let err = Query::parse(bad).err().expect(bad);
            assert_eq!(err.status, 400);
            assert!(err.message.contains("percent-encoding"), "{}", err.message);
        }
    }
}
