//! A client of `lsmdb serve`'s HTTP API (the README's routes), for `lsmdb shell --connect`
//! and `lsmdb checkpoint --connect`: blocking, over ureq, plain HTTP (the server has no TLS).
//!
//! Keys travel in the query string percent-encoded, which carries any bytes; PUT and batch
//! bodies are JSON, with every key and value in base64 and `"encoding":"base64"` when one of
//! them is not UTF-8.
//! Replies are read with `encoding=base64`, so every key and value comes back exactly.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Value, json};

/// Entries a range page asks for: enough to fill a screen many times, few enough that a page
/// of large values stays a reasonable reply.
pub const PAGE: usize = 256;

/// The largest reply read: a page of large values.
const MAX_REPLY: u64 = 4 << 30;

/// How to reach a running `lsmdb serve`, for the commands that can work through one.
#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Work through the lsmdb serve at this URL (http://HOST:PORT) instead of opening --db,
    /// which the server holds.
    #[arg(long, env = "LSMDB_URL", value_name = "URL")]
    pub connect: Option<String>,
    /// The server's bearer token, for --connect (never kept in a history file).
    #[arg(
        long,
        env = "LSMDB_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

impl ServerArgs {
    /// A client of the server named, if one is.
    pub fn client(&self) -> anyhow::Result<Option<Client>> {
        self.connect
            .as_deref()
            .map(|url| Client::new(url, self.token.clone()))
            .transpose()
    }
}

pub struct Client {
    agent: ureq::Agent,
    /// `http://host:port`, without a trailing slash.
    base: String,
    token: Option<String>,
}

/// A key or value as the server sends it: text, or base64 marked beside it.
#[derive(Deserialize)]
struct Entry {
    key: String,
    #[serde(default)]
    key_encoding: Option<String>,
    value: Option<String>,
    #[serde(default)]
    value_encoding: Option<String>,
}

#[derive(Deserialize)]
struct Page {
    results: Vec<Entry>,
    #[serde(default)]
    next_start_key: Option<String>,
    #[serde(default)]
    next_start_key_encoding: Option<String>,
}

/// A key and its value.
pub type Pair = (Vec<u8>, Vec<u8>);

/// Which keys a range holds: from `start` (inclusive; empty for the first key) to `end`
/// (exclusive; none for no end), of those starting with `prefix` (empty for all).
pub struct Span<'a> {
    pub start: &'a [u8],
    pub end: Option<&'a [u8]>,
    pub prefix: &'a [u8],
}

impl Client {
    /// A client of the server at `url` (`http://HOST:PORT`, or `HOST:PORT`).
    pub fn new(url: &str, token: Option<String>) -> anyhow::Result<Client> {
        let base = match url.split_once("://") {
            None => format!("http://{url}"),
            Some(("http", _)) => url.to_string(),
            Some((scheme, _)) => bail!("{url}: lsmdb serve speaks http://, not {scheme}://"),
        };
        let base = base.trim_end_matches('/').to_string();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(5)))
            .build()
            .into();
        Ok(Client { agent, base, token })
    }

    /// `host:port`, for the shell's prompt and banner.
    pub fn authority(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// Sends a request and returns the JSON of a 200 reply; any other status is an error
    /// carrying the server's `{"error": ...}` message.
    fn call(&self, method: &str, target: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let url = format!("{}{target}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let response = match (method, body) {
            ("GET", None) => self.with_auth(self.agent.get(&url), auth).call(),
            ("DELETE", None) => self.with_auth(self.agent.delete(&url), auth).call(),
            (method, Some(body)) => {
                let request = match method {
                    "PUT" => self.agent.put(&url),
                    _ => self.agent.post(&url),
                };
                let request = match auth {
                    Some(auth) => request.header("Authorization", auth),
                    None => request,
                };
                request
                    .header("Content-Type", "application/json")
                    .send(body.to_string().as_bytes())
            }
            (method, None) => bail!("no body for a {method} request"),
        };
        let mut response = response.map_err(|e| self.unreachable(e))?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY)
            .read_to_vec()
            .map_err(|e| self.unreachable(e))?;
        let reply: Value = serde_json::from_slice(&bytes).map_err(|e| {
            anyhow!(
                "{} answered {status} with something other than JSON: {e}",
                self.base
            )
        })?;
        if status == 200 {
            return Ok(reply);
        }
        let message = reply["error"].as_str().unwrap_or("no message");
        match status {
            401 => bail!("{message} (401: give the server's token with --token or LSMDB_TOKEN)"),
            _ => bail!("{message} ({status})"),
        }
    }

    fn with_auth<B>(
        &self,
        request: ureq::RequestBuilder<B>,
        auth: Option<String>,
    ) -> ureq::RequestBuilder<B> {
        match auth {
            Some(auth) => request.header("Authorization", auth),
            None => request,
        }
    }

    fn unreachable(&self, e: ureq::Error) -> anyhow::Error {
        anyhow!("cannot reach the server: {e}")
    }

    /// The key in a body, as base64: a key of any length and any bytes (a URL holds 8 KiB).
    fn key_body(key: &[u8]) -> Value {
        json!({"key": BASE64.encode(key), "encoding": "base64"})
    }

    pub fn get(&self, key: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        let body = Client::key_body(key);
        let reply = self.call("POST", "/keys/get?encoding=base64", Some(&body))?;
        let entry: Entry =
            serde_json::from_value(reply).context("unexpected reply to POST /keys/get")?;
        entry.value_bytes()
    }

    pub fn put(&self, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
        let body = match (std::str::from_utf8(key), std::str::from_utf8(value)) {
            (Ok(key), Ok(value)) => json!({"key": key, "value": value}),
            _ => {
                json!({"key": BASE64.encode(key), "value": BASE64.encode(value), "encoding": "base64"})
            }
        };
        self.call("PUT", "/keys", Some(&body)).map(drop)
    }

    /// Deletes `key`; whether it was there is read first (the server does not say), so
    /// another client's write in between can make the answer stale.
    pub fn delete(&self, key: &[u8]) -> anyhow::Result<bool> {
        let existed = self.get(key)?.is_some();
        self.call("POST", "/keys/delete", Some(&Client::key_body(key)))?;
        Ok(existed)
    }

    /// Applies puts (`Some`) and deletes (`None`) as one atomic batch.
    pub fn write(&self, entries: &[(Vec<u8>, Option<Vec<u8>>)]) -> anyhow::Result<()> {
        let text = entries.iter().all(|(k, v)| {
            std::str::from_utf8(k).is_ok()
                && v.as_deref().is_none_or(|v| std::str::from_utf8(v).is_ok())
        });
        let spell = |bytes: &[u8]| -> Value {
            if text {
                String::from_utf8_lossy(bytes).into()
            } else {
                BASE64.encode(bytes).into()
            }
        };
        let keys: Vec<Value> = entries.iter().map(|(k, _)| spell(k)).collect();
        let values: Vec<Value> = entries
            .iter()
            .map(|(_, v)| v.as_deref().map_or(Value::Null, spell))
            .collect();
        let mut body = json!({"keys": keys, "values": values});
        if !text {
            body["encoding"] = "base64".into();
        }
        self.call("POST", "/keys/batch", Some(&body)).map(drop)
    }

    /// One page of a range: up to `limit` entries of `span`, and the key the next page
    /// starts at, if any are left. The seed's form (`start_key`, `end_key`) where it fits,
    /// else the prefix form, which may leave out either bound.
    pub fn range_page(
        &self,
        span: &Span,
        limit: usize,
    ) -> anyhow::Result<(Vec<Pair>, Option<Vec<u8>>)> {
        let mut query = Vec::new();
        let seed_form = span.prefix.is_empty() && !span.start.is_empty() && span.end.is_some();
        if !seed_form {
            query.push(format!("prefix={}", escape(span.prefix)));
        }
        if !span.start.is_empty() {
            query.push(format!("start_key={}", escape(span.start)));
        }
        if let Some(end) = span.end {
            query.push(format!("end_key={}", escape(end)));
        }
        let target = format!(
            "/keys/range?{}&limit={limit}&encoding=base64",
            query.join("&")
        );
        let page: Page = serde_json::from_value(self.call("GET", &target, None)?)
            .context("unexpected reply to GET /keys/range")?;
        let entries = page
            .results
            .into_iter()
            .map(|e| Ok((e.key_bytes()?, e.value_bytes()?.unwrap_or_default())))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let next = page
            .next_start_key
            .map(|k| decode(&k, page.next_start_key_encoding.as_deref()))
            .transpose()?;
        Ok((entries, next))
    }

    /// Every entry of `span`, a page at a time as the iterator is read.
    pub fn range<'a>(&'a self, span: Span<'a>) -> Range<'a> {
        Range {
            client: self,
            start: span.start.to_vec(),
            end: span.end,
            prefix: span.prefix,
            page: std::collections::VecDeque::new(),
            more: true,
        }
    }

    pub fn stats(&self) -> anyhow::Result<lsmdb::Stats> {
        serde_json::from_value(self.call("GET", "/stats", None)?)
            .context("unexpected reply to GET /stats")
    }

    /// Asks the server to write a checkpoint of its database into `dest`, a path on the
    /// server's machine; returns how many tables and bytes it holds.
    pub fn checkpoint(&self, dest: &std::path::Path) -> anyhow::Result<(u64, u64)> {
        let dest = dest
            .to_str()
            .ok_or_else(|| anyhow!("{} is not UTF-8, which JSON cannot carry", dest.display()))?;
        let reply = self
            .call("POST", "/admin/checkpoint", Some(&json!({"dest": dest})))
            .with_context(|| format!("{} could not write a checkpoint to {dest}", self.base))?;
        let count = |name: &str| reply[name].as_u64().unwrap_or_default();
        Ok((count("tables"), count("bytes")))
    }
}

/// The entries of a range, fetched a page ([`PAGE`] entries) at a time.
pub struct Range<'a> {
    client: &'a Client,
    start: Vec<u8>,
    end: Option<&'a [u8]>,
    prefix: &'a [u8],
    page: std::collections::VecDeque<Pair>,
    more: bool,
}

impl Iterator for Range<'_> {
    type Item = anyhow::Result<Pair>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty() && self.more {
            let span = Span {
                start: &self.start,
                end: self.end,
                prefix: self.prefix,
            };
            match self.client.range_page(&span, PAGE) {
                Ok((entries, next)) => {
                    self.page.extend(entries);
                    self.more = next.is_some();
                    self.start = next.unwrap_or_default();
                }
                Err(e) => {
                    self.more = false;
                    return Some(Err(e));
                }
            }
        }
        self.page.pop_front().map(Ok)
    }
}

impl Entry {
    fn key_bytes(&self) -> anyhow::Result<Vec<u8>> {
        decode(&self.key, self.key_encoding.as_deref())
    }

    fn value_bytes(&self) -> anyhow::Result<Option<Vec<u8>>> {
        self.value
            .as_deref()
            .map(|v| decode(v, self.value_encoding.as_deref()))
            .transpose()
    }
}

fn decode(text: &str, encoding: Option<&str>) -> anyhow::Result<Vec<u8>> {
    match encoding {
        None => Ok(text.as_bytes().to_vec()),
        Some("base64") => BASE64
            .decode(text)
            .map_err(|e| anyhow!("the server sent bad base64: {e}")),
        Some(other) => bail!("the server sent an unknown encoding {other:?}"),
    }
}

/// Percent-encodes bytes for a query string: RFC 3986's unreserved characters stay.
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_escaped_for_a_query_string() {
        assert_eq!(escape(b"user:1 &x=\xff"), "user%3A1%20%26x%3D%FF");
        assert_eq!(escape(b"a-b.c_d~"), "a-b.c_d~");
    }

    #[test]
    fn urls_name_a_plain_http_server() {
        let client = Client::new("127.0.0.1:8080/", None).unwrap();
        assert_eq!(client.authority(), "127.0.0.1:8080");
        assert!(Client::new("https://db.example", None).is_err());
    }
}
