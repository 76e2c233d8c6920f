//! Keys, did:key and signatures.
