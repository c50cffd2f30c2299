//! The artifact store: everything the Lambda functions share.
//!
//! Functions are thin adapters: they parse a request, call one operation of
//! [`store::Store`], and render the result with [`http`]. Business rules
//! (paths, versioning, crypto, authorization) live here, once.

pub mod auth;
pub mod bundle;
pub mod config;
pub mod content;
pub mod crypto;
pub mod delivery;
pub mod envelope;
pub mod error;
pub mod http;
pub mod links;
pub mod listing;
pub mod metadata;
pub mod model;
pub mod reader;
pub mod store;
pub mod sweep;
pub mod telemetry;
pub mod uploads;
pub mod zip;

pub use config::Config;
pub use error::{Error, Result};
pub use store::Store;
