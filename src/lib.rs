//! cloudflared-routes: Gateway API routes → a locally-managed cloudflared `config.yml`.
//!
//! ```text
//! objects → snapshot → translate → rules + statuses → render → write → reload → verify
//! ```
//!
//! This crate is the shell around the pure core (`routes_core`): reading manifests and
//! converting the generated Gateway API types into the core's model ([`manifests`],
//! [`convert`]; every input file is read through [`input`]), turning computed statuses back into Gateway API status objects
//! ([`status_yaml`]), and the command line ([`cli`]).
#![forbid(unsafe_code)]

pub mod cli;
pub mod convert;
pub mod credentials;
pub mod decode;
pub mod input;
pub mod kinds;
pub mod log_text;
pub mod manifests;
pub mod run;
pub mod status_yaml;
pub mod summary;
