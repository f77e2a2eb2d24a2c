use std::io::{Cursor, Error as IoError, Read};

use std::fmt;
use std::net::SocketAddr;

use std::sync::mpsc::{channel, Receiver, Sender};

use crate::{HTTPVersion, Header, Method, Response, ResponseBox};

/// Represents an HTTP request made by a client.
///
/// A `Request` object is what is produced by the server, and is your what
/// your code must analyse and answer.
///
/// This object implements the `Send` trait, therefore you can dispatch your requests to
/// worker threads.
///
/// lsmdb patch: a `Request` arrives with its body already read in full (by the connection's
/// own thread, within the server's body limits and deadline), and `respond` hands the
/// response back to that thread, which writes it. Nothing a worker does with a `Request`
/// waits on the client. Upstream handed the request over as soon as its head was read, and
/// the worker read the body and wrote the reply on the socket at the client's pace.
///
/// # Pipelining
///
/// A connection's next request is read only once the reply to the previous one has been
/// written (lsmdb patch: upstream parsed pipelined requests ahead, without limit), so the
/// replies come in order and a connection has at most one request in the server.
///
/// # Automatic cleanup
///
/// If a `Request` object is destroyed without `respond` being called, an empty response with
/// a 500 status code (internal server error) is sent back to the client.
pub struct Request {
    body: Cursor<Vec<u8>>,

    // where the response goes: the connection's thread; `None` once answered
    reply: Option<Sender<Answer>>,

    remote_addr: Option<SocketAddr>,

    method: Method,

    path: String,

    http_version: HTTPVersion,

    headers: Vec<Header>,

    body_length: Option<usize>,
}

/// A response, and what to run once it is written (or has failed to be).
pub(crate) type Answer = (ResponseBox, Option<Box<dyn FnOnce() + Send>>);

/// A request's head as the connection read it.
pub(crate) struct Head {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) version: HTTPVersion,
    pub(crate) headers: Vec<Header>,
}

impl Request {
    /// A complete request, and the receiver its response will come through.
    pub(crate) fn new(
        head: Head,
        body: Vec<u8>,
        body_length: Option<usize>,
        remote_addr: Option<SocketAddr>,
    ) -> (Request, Receiver<Answer>) {
        let (tx, rx) = channel();
        let request = Request {
            body: Cursor::new(body),
            reply: Some(tx),
            remote_addr,
            method: head.method,
            path: head.path,
            http_version: head.version,
            headers: head.headers,
            body_length,
        };
        (request, rx)
    }

    /// Returns the method requested by the client (eg. `GET`, `POST`, etc.).
    #[inline]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Returns the resource requested by the client.
    #[inline]
    pub fn url(&self) -> &str {
        &self.path
    }

    /// Returns a list of all headers sent by the client.
    #[inline]
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Returns the HTTP version of the request.
    #[inline]
    pub fn http_version(&self) -> &HTTPVersion {
        &self.http_version
    }

    /// Returns the length of the body in bytes when the client announced it with
    /// `Content-Length`; `None` for a chunked body or none at all.
    #[inline]
    pub fn body_length(&self) -> Option<usize> {
        self.body_length
    }

    /// Returns the address of the client that sent this request.
    ///
    /// The address is always `Some` for TCP listeners, but always `None` for UNIX listeners
    /// (as the remote address of a UNIX client is almost always unnamed).
    ///
    /// Note that this is gathered from the socket. If you receive the request from a proxy,
    /// this function will return the address of the proxy and not the address of the actual
    /// user.
    #[inline]
    pub fn remote_addr(&self) -> Option<&SocketAddr> {
        self.remote_addr.as_ref()
    }

    /// Allows to read the body of the request.
    #[inline]
    pub fn as_reader(&mut self) -> &mut dyn Read {
        &mut self.body
    }

    /// Takes the body, whole (lsmdb patch: it is already in memory).
    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(self.body.get_mut())
    }

    /// Sends a response to this request: the connection's thread writes it, within the
    /// server's reply deadline, while the caller goes on. A response whose reader produces
    /// the body as it is read (no known length) goes out in chunked encoding, or to an
    /// HTTP/1.0 client delimited by the connection's close.
    #[inline]
    pub fn respond<R>(mut self, response: Response<R>) -> Result<(), IoError>
    where
        R: Read + Send + 'static,
    {
        self.answer(response.boxed(), None);
        Ok(())
    }

    /// As `respond`, and `then` runs on the connection's thread once the reply is written or
    /// has failed to be (lsmdb patch): what the application does after a reply, such as
    /// logging it, stays off the time the client waits.
    pub fn respond_then<R, F>(mut self, response: Response<R>, then: F)
    where
        R: Read + Send + 'static,
        F: FnOnce() + Send + 'static,
    {
        self.answer(response.boxed(), Some(Box::new(then)));
    }

    fn answer(&mut self, response: ResponseBox, then: Option<Box<dyn FnOnce() + Send>>) {
        if let Some(reply) = self.reply.take() {
            // The connection's thread is gone only if its client is: no one to answer.
            let _ = reply.send((response, then));
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> Result<(), fmt::Error> {
        write!(
            formatter,
            "Request({} {} from {:?})",
            self.method, self.path, self.remote_addr
        )
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        self.answer(Response::empty(500).boxed(), None);
    }
}

#[cfg(test)]
mod tests {
    use super::Request;

    #[test]
    fn must_be_send() {
        #![allow(dead_code)]
        fn f<T: Send>(_: &T) {}
        fn bar(rq: &Request) {
            f(rq);
        }
    }
}
