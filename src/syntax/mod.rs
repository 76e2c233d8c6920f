//! Typed atproto identifiers.
