//! Rookery's integration tests: one test binary (so the crate is linked once) with one shared
//! `support` module. Every test gets its own data directory and server; the real PLC
//! directory is one child process shared by the whole binary (see `support::plc`).

mod support;

mod account_admin;
mod account_mail;
mod blobstore_s3;
mod crawlers;
mod firehose;
mod hub;
mod migration;
mod migration_refpds;
mod oauth;
mod official_client;
mod offline_first_run;
mod ops_admin_cli;
mod ops_health;
mod ops_logs;
mod ops_metrics;
mod ops_rate_limits;
mod pds_harness;
mod plc_directory;
mod plc_embedded;
mod proxy;
mod replication;
mod server_basic;
mod sync_blocks_list;
mod web;
mod write_crash;
mod xrpc_admin;
mod xrpc_blobs;
mod xrpc_identity;
mod xrpc_repo;
mod xrpc_server;
mod xrpc_sync;
