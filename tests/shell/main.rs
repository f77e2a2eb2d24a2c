//! `lsmdb shell`, at a pseudo-terminal and with a script on stdin.

#[path = "../binary/mod.rs"]
mod binary;

mod connect;
mod pty;
mod script;
