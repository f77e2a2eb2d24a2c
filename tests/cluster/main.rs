//! Real `lsmdb serve --cluster` processes on loopback (issue 16): the HTTP API through a
//! group, failover and recovery, and histories under faults checked for linearizability
//! (RELIABILITY.md T17).

#[path = "../binary/mod.rs"]
mod binary;

mod api;
mod chaos;
mod harness;
mod linearizable;
mod recovery;
