//! A local API Gateway (HTTP API, payload format 2.0) in front of the
//! functions: the listener of `make dev` on 127.0.0.1:9000 and of the edge
//! tests (SPEC §11).
//!
//! - routes by method and path from `infra/template.yaml` ([`routes`]);
//! - builds the event the real gateway builds: the path decoded once
//!   (`rawPath`, `requestContext.http.path` and `pathParameters`), text or base64 by content type, lower-case
//!   headers, cookies, the request context ([`event`]);
//! - emulates the JWT authorizer with the dev HS256 secret, putting the
//!   claims where API Gateway puts them, so functions run their deployed
//!   auth path ([`event::authorize`]);
//! - invokes functions through [`invoke::Invoke`] (`cargo lambda watch`'s
//!   Invoke API, or the real handlers in-process in the tests) and writes
//!   their response back byte-exact ([`server::to_http`]).
//!
//! It depends on no function crate.

pub mod event;
pub mod invoke;
pub mod routes;
pub mod server;

pub use invoke::{BoxFuture, Invoke, InvokeApi, InvokeError};
pub use routes::Routes;
pub use server::Gateway;
