//! Lexicon v1 (atproto.com/specs/lexicon): schema documents, a catalog of them, and the
//! validation of records, XRPC bodies and query parameters against them.
//!
//! - [`LexiconDoc`] and [`Def`] model a schema file ([`schema`]); [`LexiconDoc::from_json`]
//!   reads one and [`LexiconDoc::check`] applies the document rules of the spec (version `1`,
//!   an NSID `id`, which types may be named definitions, primary types only as `main`, a
//!   record body is an `object`, parameter types, `const`/`default` exclusive, …).
//! - [`Catalog`] holds documents and resolves references (`#local`, `nsid`, `nsid#name`).
//!   [`Catalog::builtin`] has every schema of the project's `lexicons/` folder, embedded in
//!   the binary at compile time.
//! - [`Catalog::validate_record`], [`Catalog::validate_value`],
//!   [`Catalog::validate_input`] / [`Catalog::validate_output`] and
//!   [`Catalog::validate_params`] check data-model values ([`Ipld`], as read by
//!   [`crate::repo::cbor::json_to_value`] or decoded from DAG-CBOR). They assume the value
//!   already passed the data-model rules of [`crate::repo::cbor`]; the Lexicon rules come on
//!   top. A failure is a [`ValidationError`] with a path such as `Record/embed/images/0/alt`.
//!
//! [`Ipld`]: crate::repo::cbor::Ipld

mod catalog;
pub(crate) mod check;
pub(crate) mod embedded;
mod params;
pub mod schema;
pub(crate) mod validate;

#[cfg(test)]
mod tests;

use std::fmt;

pub use catalog::Catalog;
pub use params::ParamValues;
pub use schema::{
    ArrayDef, BlobDef, Body, BooleanDef, BytesDef, CidLinkDef, Def, IntegerDef, LexiconDoc,
    Message, ObjectDef, ParamsDef, PermissionDef, PermissionSetDef, ProcedureDef, QueryDef,
    RecordDef, RecordKeyType, RefDef, StringDef, StringFormat, SubscriptionDef, TokenDef, UnionDef,
    UnknownDef, XrpcError,
};

/// Why a schema document, or a set of them, was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not JSON, or not shaped like a Lexicon document (missing or mistyped field, unknown
    /// `type`, an invalid NSID as `id`, …).
    #[error("malformed lexicon document: {0}")]
    Malformed(String),
    /// Well-formed, but breaks a rule of the Lexicon language. `path` points into the
    /// document, e.g. `defs/main/record/properties/text`.
    #[error("invalid lexicon {id} at {path}: {message}")]
    Invalid {
        id: String,
        path: String,
        message: String,
    },
    /// A document with this `id` is already in the catalog.
    #[error("lexicon {0} is already in the catalog")]
    Duplicate(String),
    /// A schema file or folder could not be read.
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    /// Loading one file of a folder failed.
    #[error("{file}: {source}")]
    InFile {
        file: String,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    fn invalid(id: &str, path: &str, message: impl Into<String>) -> Error {
        Error::Invalid {
            id: id.to_owned(),
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// What kind of failure a [`ValidationError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationErrorKind {
    /// The data does not follow its schema.
    Invalid,
    /// The schema named by the caller (collection, method, definition) is not in the
    /// catalog, so nothing was validated. A PDS doing optimistic validation lets such
    /// records through.
    UnknownSchema,
    /// The catalog cannot validate this: a reference inside a schema does not resolve, or
    /// points at a definition that cannot describe data. [`Catalog::check_refs`] rules this
    /// out for a whole catalog.
    BadSchema,
}

/// Why a value does not validate: where (`path`, e.g. `Record/embed/images/0/alt`) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    path: String,
    message: String,
    kind: ValidationErrorKind,
}

impl ValidationError {
    pub(crate) fn new(path: &str, message: impl Into<String>) -> ValidationError {
        ValidationError {
            path: path.to_owned(),
            message: message.into(),
            kind: ValidationErrorKind::Invalid,
        }
    }

    pub(crate) fn with_kind(mut self, kind: ValidationErrorKind) -> ValidationError {
        self.kind = kind;
        self
    }

    /// Slash-separated location of the offending value, starting with `Record`, `Value`,
    /// `Input`, `Output` or `Params`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong, without the path.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn kind(&self) -> ValidationErrorKind {
        self.kind
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Splits a reference into its document NSID (`None` for a local `#name`) and definition
/// name (`main` when there is no fragment). `None` if it is not a well-formed reference.
pub(crate) fn split_ref(reference: &str) -> Option<(Option<&str>, &str)> {
    let (nsid, name) = match reference.split_once('#') {
        Some(("", name)) => (None, name),
        Some((nsid, name)) => (Some(nsid), name),
        None => (Some(reference), "main"),
    };
    if !is_def_name(name) {
        return None;
    }
    if let Some(nsid) = nsid
        && nsid.parse::<crate::syntax::Nsid>().is_err()
    {
        return None;
    }
    Some((nsid, name))
}

/// Definition names: ASCII letters, digits, `_` and `-`, 1 to 128 characters.
pub(crate) fn is_def_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
