//! The artifact store: everything the Lambda functions share.
//!
//! Functions are thin adapters: they parse a request, call one operation of
//! [`store::Store`], and render the result with [`http`]. Business rules
//! (paths, versioning, crypto, authorization) live here, once.
//!
//! Layers point one way:
//! - capabilities, each with its own `impl Store` block: [`store`] (the
//!   front door: construction and the version commit), [`uploads`],
//!   [`listing`], [`find`], [`search`], [`resolve`], [`links`], [`audit`], [`delivery`],
//!   [`bundle`], [`reader`],
//!   [`sweep`], [`lifecycle`], [`purge`], [`attestation`] (signed publish
//!   attestations, SPEC §18);
//! - adapters, which never import a capability: [`metadata`] (DynamoDB),
//!   [`content`] (S3, including the `deliveries/` copies), [`envelope`] (KMS
//!   data keys), [`link_key`] (the KMS HMAC key and the link token codec),
//!   [`signer`] (the KMS P-256 signing key), [`sdk`] (the SDK
//!   configuration from Lambda's environment);
//! - the core they all use: [`model`], [`crypto`], [`zip`], [`auth`],
//!   [`http`], [`error`], [`config`].

pub mod attestation;
pub mod audit;
pub mod auth;
pub mod bundle;
pub mod bundle_signature;
pub mod config;
pub mod content;
pub mod crypto;
pub mod delivery;
pub mod envelope;
pub mod error;
pub mod find;
pub mod http;
pub mod lifecycle;
pub mod link_key;
pub mod links;
pub mod listing;
pub mod metadata;
pub mod model;
pub mod purge;
pub mod reader;
pub mod resolve;
pub mod sdk;
pub mod search;
pub mod signer;
pub mod store;
pub mod sweep;
pub mod telemetry;
pub mod uploads;
pub mod zip;

pub use config::Config;
pub use error::{Error, Result};
pub use store::Store;
