//! The Lexicon schema language as Rust types (serde, JSON).
//!
//! Every definition is one [`Def`], tagged by its `type` field. Where the language demands a
//! particular type in a position (a record body is an `object`, query parameters are
//! `params`, a permission set lists `permission`s), the field has that type and reading
//! anything else fails. Everything else the language requires of a document is checked
//! after reading, by [`LexiconDoc::check`](super::LexiconDoc::check).
//!
//! Optional fields stay optional (`None` is not written back), so reading a document and
//! writing it again gives the same JSON object, apart from fields this model does not know
//! (they are ignored, as the spec asks of unknown fields) and an `object` without
//! `properties`, which is written back with an empty `properties`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::syntax::Nsid;

/// One Lexicon schema document (a JSON file, or a `com.atproto.lexicon.schema` record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LexiconDoc {
    /// The Lexicon language version; only `1` exists.
    pub lexicon: i64,
    pub id: Nsid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Named definitions; `main` is the one the bare NSID refers to.
    pub defs: BTreeMap<String, Def>,
}

/// A schema definition of any type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Def {
    Record(RecordDef),
    Query(QueryDef),
    Procedure(ProcedureDef),
    Subscription(SubscriptionDef),
    PermissionSet(PermissionSetDef),
    Permission(PermissionDef),
    Params(ParamsDef),
    Object(ObjectDef),
    Array(ArrayDef),
    Token(TokenDef),
    String(StringDef),
    Integer(IntegerDef),
    Boolean(BooleanDef),
    Bytes(BytesDef),
    CidLink(CidLinkDef),
    Blob(BlobDef),
    Ref(RefDef),
    Union(UnionDef),
    Unknown(UnknownDef),
}

impl Def {
    /// The `type` name as written in JSON.
    pub fn type_name(&self) -> &'static str {
        match self {
            Def::Record(_) => "record",
            Def::Query(_) => "query",
            Def::Procedure(_) => "procedure",
            Def::Subscription(_) => "subscription",
            Def::PermissionSet(_) => "permission-set",
            Def::Permission(_) => "permission",
            Def::Params(_) => "params",
            Def::Object(_) => "object",
            Def::Array(_) => "array",
            Def::Token(_) => "token",
            Def::String(_) => "string",
            Def::Integer(_) => "integer",
            Def::Boolean(_) => "boolean",
            Def::Bytes(_) => "bytes",
            Def::CidLink(_) => "cid-link",
            Def::Blob(_) => "blob",
            Def::Ref(_) => "ref",
            Def::Union(_) => "union",
            Def::Unknown(_) => "unknown",
        }
    }

    /// Whether this is one of the primary types, which may only be named `main`.
    pub fn is_primary(&self) -> bool {
        matches!(
            self,
            Def::Record(_)
                | Def::Query(_)
                | Def::Procedure(_)
                | Def::Subscription(_)
                | Def::PermissionSet(_)
        )
    }
}

/// `record`: the schema of a repository record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The record key type: `tid`, `nsid`, `any` or `literal:<key>` (see [`RecordKeyType`]).
    pub key: String,
    #[serde(with = "typed")]
    pub record: ObjectDef,
}

impl RecordDef {
    /// The parsed `key`; `None` only for a document that was never [checked](LexiconDoc::check).
    pub fn key_type(&self) -> Option<RecordKeyType> {
        RecordKeyType::parse(&self.key)
    }
}

/// What record keys a collection allows (the `key` of a `record` definition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKeyType {
    Tid,
    Nsid,
    Any,
    /// Exactly this key, e.g. `self` for `literal:self`.
    Literal(String),
}

impl RecordKeyType {
    /// Reads a `key` value; `None` for anything the language does not define.
    pub fn parse(key: &str) -> Option<RecordKeyType> {
        match key {
            "tid" => Some(RecordKeyType::Tid),
            "nsid" => Some(RecordKeyType::Nsid),
            "any" => Some(RecordKeyType::Any),
            _ => key
                .strip_prefix("literal:")
                .map(|k| RecordKeyType::Literal(k.to_owned())),
        }
    }
}

/// `query`: an XRPC query (HTTP GET).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "typed_opt")]
    pub parameters: Option<ParamsDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Body>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<XrpcError>>,
}

/// `procedure`: an XRPC procedure (HTTP POST).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcedureDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "typed_opt")]
    pub parameters: Option<ParamsDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Body>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Body>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<XrpcError>>,
}

/// `subscription`: an event stream (WebSocket).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "typed_opt")]
    pub parameters: Option<ParamsDef>,
    pub message: Message,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<XrpcError>>,
}

/// An HTTP request or response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Body {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// MIME type of the body, e.g. `application/json`.
    pub encoding: String,
    /// An `object`, a `ref` or a `union` (checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Box<Def>>,
}

/// The messages of a subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A `union` of refs (checked).
    pub schema: Box<Def>,
}

/// A named error an XRPC endpoint may return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct XrpcError {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `permission-set`: a bundle of permissions usable as an OAuth scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermissionSetDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Translations of `title`, keyed by language tag.
    #[serde(
        default,
        rename = "title:lang",
        skip_serializing_if = "Option::is_none"
    )]
    pub title_lang: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Translations of `detail`, keyed by language tag.
    #[serde(
        default,
        rename = "detail:lang",
        skip_serializing_if = "Option::is_none"
    )]
    pub detail_lang: Option<BTreeMap<String, String>>,
    #[serde(with = "typed_vec")]
    pub permissions: Vec<PermissionDef>,
}

/// `permission`: one permission of a permission set. Which fields apply depends on
/// `resource`; resources and fields this model does not know are ignored, as the spec asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub resource: String,
    /// `repo`: the record types (NSIDs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<Vec<String>>,
    /// `repo`: `create`, `update` and/or `delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Vec<String>>,
    /// `rpc`: the XRPC methods (NSIDs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lxm: Option<Vec<String>>,
    /// `rpc`: the remote service, `*` for any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// `rpc`: the audience comes from the scope's request instead of `aud`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inherit_aud: Option<bool>,
}

/// `params`: the HTTP query parameters of an XRPC endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamsDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<Vec<String>>,
    /// Only `boolean`, `integer`, `string`, or an `array` of those (checked).
    #[serde(default)]
    pub properties: BTreeMap<String, Def>,
}

/// `object`: a map with named, typed properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<Vec<String>>,
    /// Properties that may be present with the value `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nullable: Option<Vec<String>>,
    #[serde(default)]
    pub properties: BTreeMap<String, Def>,
}

impl ObjectDef {
    pub fn is_required(&self, name: &str) -> bool {
        self.required.iter().flatten().any(|r| r == name)
    }

    pub fn is_nullable(&self, name: &str) -> bool {
        self.nullable.iter().flatten().any(|n| n == name)
    }
}

/// `array`: a list whose elements all follow `items`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArrayDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub items: Box<Def>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
}

/// `token`: a named symbol with no data representation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `string`. Lengths are in UTF-8 bytes, graphemes in extended grapheme clusters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StringDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<StringFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_graphemes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_graphemes: Option<u64>,
    /// Suggested values; any other value is allowed too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_values: Option<Vec<String>>,
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub enum_values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, rename = "const", skip_serializing_if = "Option::is_none")]
    pub const_value: Option<String>,
}

/// The `format` of a `string`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StringFormat {
    AtIdentifier,
    AtUri,
    Cid,
    Datetime,
    Did,
    Handle,
    Nsid,
    Tid,
    RecordKey,
    Uri,
    Language,
}

impl StringFormat {
    pub fn name(self) -> &'static str {
        match self {
            StringFormat::AtIdentifier => "at-identifier",
            StringFormat::AtUri => "at-uri",
            StringFormat::Cid => "cid",
            StringFormat::Datetime => "datetime",
            StringFormat::Did => "did",
            StringFormat::Handle => "handle",
            StringFormat::Nsid => "nsid",
            StringFormat::Tid => "tid",
            StringFormat::RecordKey => "record-key",
            StringFormat::Uri => "uri",
            StringFormat::Language => "language",
        }
    }
}

/// `integer`: a signed 64-bit integer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegerDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<i64>,
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub enum_values: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<i64>,
    #[serde(default, rename = "const", skip_serializing_if = "Option::is_none")]
    pub const_value: Option<i64>,
}

/// `boolean`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BooleanDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    #[serde(default, rename = "const", skip_serializing_if = "Option::is_none")]
    pub const_value: Option<bool>,
}

/// `bytes`: a byte string; lengths count raw bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BytesDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
}

/// `cid-link`: a link (CID) in the data model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CidLinkDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `blob`: a reference to an uploaded file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Accepted MIME types: `type/subtype`, `type/*` or `*/*`. Absent or empty: any type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept: Option<Vec<String>>,
    /// Largest accepted size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
}

/// `ref`: the schema of another definition, `#local`, `nsid` or `nsid#name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "ref")]
    pub reference: String,
}

/// `union`: one of several object types, told apart by `$type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnionDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub refs: Vec<String>,
    /// Closed unions accept only the listed types; open ones (the default) accept any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<bool>,
}

impl UnionDef {
    pub fn is_closed(&self) -> bool {
        self.closed == Some(true)
    }
}

/// `unknown`: any object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnknownDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A definition type that is read and written as a [`Def`] of one fixed type.
trait Variant: Sized + Clone {
    const TYPE: &'static str;
    fn from_def(def: Def) -> Option<Self>;
    fn to_def(&self) -> Def;
}

macro_rules! variant {
    ($ty:ident, $variant:ident, $name:literal) => {
        impl Variant for $ty {
            const TYPE: &'static str = $name;
            fn from_def(def: Def) -> Option<Self> {
                match def {
                    Def::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn to_def(&self) -> Def {
                Def::$variant(self.clone())
            }
        }
    };
}

variant!(ObjectDef, Object, "object");
variant!(ParamsDef, Params, "params");
variant!(PermissionDef, Permission, "permission");

fn expect<T: Variant, E: serde::de::Error>(def: Def) -> Result<T, E> {
    let found = def.type_name();
    T::from_def(def)
        .ok_or_else(|| E::custom(format!("expected type \"{}\", found \"{found}\"", T::TYPE)))
}

/// A field holding a definition of one fixed type, with its `type` tag.
mod typed {
    use super::*;

    pub(crate) fn serialize<T: Variant, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        v.to_def().serialize(s)
    }

    pub(crate) fn deserialize<'de, T: Variant, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        expect(Def::deserialize(d)?)
    }
}

/// [`typed`] for an optional field.
mod typed_opt {
    use super::*;

    pub(crate) fn serialize<T: Variant, S: Serializer>(
        v: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        v.as_ref().map(Variant::to_def).serialize(s)
    }

    pub(crate) fn deserialize<'de, T: Variant, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        Option::<Def>::deserialize(d)?.map(expect).transpose()
    }
}

/// [`typed`] for a list.
mod typed_vec {
    use super::*;

    pub(crate) fn serialize<T: Variant, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(Variant::to_def))
    }

    pub(crate) fn deserialize<'de, T: Variant, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<T>, D::Error> {
        Vec::<Def>::deserialize(d)?
            .into_iter()
            .map(expect)
            .collect()
    }
}
