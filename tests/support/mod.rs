//! Test support shared by the integration tests: a model of cloudflared's ingress matcher
//! ([`cloudflared`]), running the binary ([`cli`]), the routing fixtures and their expectation
//! tables ([`fixtures`]) and reading `status` output ([`status`]).
//!
//! Each integration test file includes this module and uses a different part of it.
#![allow(dead_code, unused_imports, unused_macros)]

pub mod cli;
pub mod cloudflared;
pub mod fixtures;
pub mod status;
