//! What an operator watches: the log set-up ([`logging`]), the per-request middleware that
//! assigns request ids, logs one line per request and counts it ([`request`]), and the
//! Prometheus text exposition of the server's counters ([`exposition`], [`http`]).
//!
//! A neutral home: nothing here knows about the services; each service keeps its own
//! counters (atomics on its hot path) and the `/metrics` route gathers them at scrape time.

pub mod exposition;
pub mod http;
pub mod logging;
pub mod request;

pub use exposition::Exposition;
pub use http::HttpMetrics;
pub use request::{REQUEST_ID_HEADER, RequestId};
