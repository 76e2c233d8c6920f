//! The OAuth authorization server: the whole flow with the official Node client, scope
//! enforcement, and the refusals of bad input, driven over real sockets.

mod bad_input;
pub(crate) mod client;
mod clients;
mod flow;
mod permission_sets;
mod permissions;
