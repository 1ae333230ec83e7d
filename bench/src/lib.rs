//! The STS load benchmark (`scripts/bench-sts`): the pieces the `bench-sts` driver and the
//! `ceiling` server share. Not a test: it prints figures.

pub mod bodies;
pub mod cpu;
pub mod crypto;
pub mod manifests;
pub mod report;
pub mod wrk;
