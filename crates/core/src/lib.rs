//! The pure translation core of cloudflared-routes.
//!
//! Data flow of the whole program; this crate is the middle of it:
//!
//! ```text
//! objects → snapshot → translate → rules + statuses → render → write → reload → verify
//!           (model)    (translate)  (ingress, status)  (render)
//! ```
//!
//! Nothing here does I/O, reads a clock or the environment, or is async; the crate does not
//! depend on kube, tokio or the generated Gateway API types (the binary converts those into
//! [`model`] types once, at the edge). The same snapshot always gives the same bytes.
#![forbid(unsafe_code)]

pub mod build;
mod gostd;
pub mod hostname;
pub mod ingress;
pub mod model;
pub mod path;
pub mod re2;
pub mod render;
pub mod status;
pub mod translate;
pub mod validate;
pub mod yaml;

pub use translate::{translate, Settings, Translation};
