//! Shared helpers for integration tests.

// Each test crate uses only some of these helpers.
#![allow(dead_code)]

pub mod pds;
pub mod plc;
pub mod process;
pub mod s3;
pub mod smtp;
