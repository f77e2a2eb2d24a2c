//! A fault-injecting file system for tests (RELIABILITY.md T6-T8). Filled in by the
//! reliability work; see `FaultFileSystem`.
