//! `lsmdb serve` over real sockets: the seed's API, HTTP itself, many clients at once, and
//! stopping and restarting the server.

#[path = "../binary/mod.rs"]
mod binary;

mod abuse;
mod api;
mod bytes;
mod checkpoint;
mod concurrency;
mod protocol;
mod restart;
