//! Rookery: an AT Protocol Personal Data Server.
//!
//! Layers, with dependencies pointing down only:
//! - [`server`] and [`xrpc`]: the HTTP boundary (router, extractors, [`error::XrpcError`]);
//! - [`config`]: the one typed [`config::Config`];
//! - [`syntax`]: typed atproto identifiers (DID, handle, NSID, TID, record key, AT-URI, …);
//! - [`crypto`]: secp256k1 / P-256 keys, `did:key`, low-S signatures;
//! - [`repo`]: the repository engine (DAG-CBOR, CIDs, MST, commits, CAR), storage-agnostic;
//! - [`lexicon`]: Lexicon schemas, the embedded catalog, record and XRPC validation;
//! - [`store`]: SQLite persistence (the block store behind the repo engine);
//! - [`accounts`]: the account database (credentials, sessions, invites, e-mail tokens);
//! - [`actor`]: per-account stores and the repository service (writes, reads);
//! - [`sequencer`]: the firehose event log and the outbox that fills it;
//! - [`blobs`]: blob storage on local disk or S3;
//! - [`identity`], [`auth`], [`proxy`]: did:plc and handles, tokens, service proxying;
//! - [`plc_directory`]: the embedded did:plc directory of the development server.

pub mod account_service;
pub mod accounts;
pub mod actor;
pub mod admin_client;
pub mod auth;
pub mod bench;
pub mod blobs;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod error;
pub mod hub;
pub mod identity;
pub mod lexicon;
pub mod mail;
pub mod migration;
pub mod oauth;
pub mod plc_directory;
pub mod proxy;
pub mod replica;
pub mod repo;
pub mod s3;
pub mod sequencer;
pub mod server;
pub mod store;
pub mod syntax;
pub mod telemetry;
pub mod web;
pub mod xrpc;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tower_http::cors::{AllowHeaders, AllowMethods, Any, CorsLayer};

pub use server::AppState;

/// How long browsers may cache a CORS preflight answer (one day, as the reference).
const CORS_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Any origin, method and header, as the reference. Requested methods and headers are
/// mirrored rather than answered with `*`, because browsers never let `*` cover
/// `Authorization` and ignore it altogether on credentialed requests.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(AllowMethods::mirror_request())
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(Any)
        .max_age(CORS_MAX_AGE)
}

/// The whole HTTP application. `serve` and the tests build the same router.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/", get(server::banner))
        .route("/metrics", get(server::metrics::admin_metrics))
        .merge(xrpc::routes())
        .merge(web::routes())
        .fallback(xrpc::not_routed)
        .method_not_allowed_fallback(xrpc::wrong_method);
    if let Some(directory) = state.embedded_plc() {
        let plc = plc_directory::http::router(directory.clone());
        router = router
            .nest_service(plc_directory::MOUNT_PATH, plc.clone())
            // `/did:…` paths also reach it at the root: `@atproto/identity` resolves
            // `/{did}` against the directory URL's origin, dropping its `/plc` path.
            .layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    plc_directory::http::did_paths_at_root(plc.clone(), req, next)
                },
            ));
    }
    router
        // Innermost first: JSON body limit (routes may raise it), 500 logging, rate limits,
        // CORS, then the request id, log line and metrics of every request.
        .layer(xrpc::extract::body_limit(xrpc::extract::JSON_BODY_LIMIT))
        // `Authorization: DPoP` on XRPC requests (OAuth access tokens).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            xrpc::oauth::dpop_resource_auth,
        ))
        .layer(axum::middleware::from_fn(error::log_internal_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            server::limits::limit_requests,
        ))
        .layer(cors())
        .layer(axum::middleware::from_fn_with_state(
            state.http_metrics().clone(),
            telemetry::request::observe,
        ))
        .with_state(state)
}
