//! Validating data-model values against the schemas of a [`Catalog`].

use std::collections::BTreeMap;

use unicode_segmentation::UnicodeSegmentation;

use super::catalog::Catalog;
use super::check::full_ref;
use super::schema::*;
use super::{ValidationError, ValidationErrorKind, split_ref};
use crate::repo::cbor::{BlobRef, Ipld, MAX_DEPTH};
use crate::syntax::{
    AtIdentifier, AtUri, Datetime, Did, Handle, Language, Nsid, RecordKey, Tid, Uri,
    check_cid_syntax,
};

/// A location in the value being validated, rendered only when an error is reported.
#[derive(Clone, Copy)]
pub(super) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    segment: Segment<'a>,
    /// Containers entered below the root.
    depth: usize,
}

#[derive(Clone, Copy)]
enum Segment<'a> {
    Root(&'a str),
    Key(&'a str),
    Index(usize),
}

impl<'a> Path<'a> {
    pub(super) fn root(name: &'a str) -> Path<'a> {
        Path {
            parent: None,
            segment: Segment::Root(name),
            depth: 0,
        }
    }

    pub(super) fn key(&'a self, key: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Segment::Key(key),
            depth: self.depth + 1,
        }
    }

    fn index(&'a self, index: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Segment::Index(index),
            depth: self.depth + 1,
        }
    }

    fn render(&self) -> String {
        let mut segments = Vec::with_capacity(self.depth + 1);
        let mut node = Some(self);
        while let Some(n) = node {
            segments.push(n.segment);
            node = n.parent;
        }
        let mut out = String::new();
        for (i, segment) in segments.iter().rev().enumerate() {
            if i > 0 {
                out.push('/');
            }
            match segment {
                Segment::Root(s) | Segment::Key(s) => out.push_str(s),
                Segment::Index(n) => out.push_str(&n.to_string()),
            }
        }
        out
    }

    pub(super) fn err(&self, message: impl Into<String>) -> ValidationError {
        ValidationError::new(&self.render(), message)
    }

    fn schema_err(&self, message: impl Into<String>) -> ValidationError {
        self.err(message).with_kind(ValidationErrorKind::BadSchema)
    }
}

fn unknown_schema(root: &str, message: String) -> ValidationError {
    ValidationError::new(root, message).with_kind(ValidationErrorKind::UnknownSchema)
}

impl Catalog {
    /// Validates a record of `collection`: the value must be an object whose `$type` is
    /// exactly the collection NSID, and must follow the collection's `record` schema.
    /// Errors have paths under `Record`. A collection the catalog does not know gives
    /// [`ValidationErrorKind::UnknownSchema`].
    pub fn validate_record(&self, collection: &Nsid, value: &Ipld) -> Result<(), ValidationError> {
        let root = Path::root("Record");
        let record = self.record_schema(collection, "Record")?;
        let Ipld::Map(map) = value else {
            return Err(root.err("must be an object"));
        };
        match map.get("$type") {
            None => return Err(root.err("must have a $type")),
            Some(Ipld::String(t)) if t == collection.as_str() => {}
            Some(Ipld::String(t)) => {
                return Err(type_mismatch(&root.key("$type"), t, collection.as_str()));
            }
            Some(_) => return Err(root.key("$type").err("must be a string")),
        }
        Validator { catalog: self }.object(collection.as_str(), &record.record, map, &root)
    }

    /// Checks a record key against the collection's key type (`tid`, `nsid`, `literal:…`
    /// or `any`).
    pub fn validate_record_key(
        &self,
        collection: &Nsid,
        rkey: &RecordKey,
    ) -> Result<(), ValidationError> {
        let record = self.record_schema(collection, "RecordKey")?;
        let root = Path::root("RecordKey");
        let ok = match record.key_type() {
            Some(RecordKeyType::Any) => true,
            Some(RecordKeyType::Tid) => rkey.as_str().parse::<Tid>().is_ok(),
            Some(RecordKeyType::Nsid) => rkey.as_str().parse::<Nsid>().is_ok(),
            Some(RecordKeyType::Literal(key)) => rkey.as_str() == key,
            None => return Err(root.schema_err(format!("unknown key type {:?}", record.key))),
        };
        if ok {
            Ok(())
        } else {
            Err(root.err(format!(
                "record key {:?} does not match the key type {:?} of {collection}",
                rkey.as_str(),
                record.key
            )))
        }
    }

    /// Validates a value against a global definition (`nsid` for `main`, or `nsid#name`),
    /// as if it were a field of that type: an `object` (a `$type`, if present, must name
    /// it), a `record` (its `$type` is required), a string, an array, … Paths start with
    /// `Value`.
    pub fn validate_value(&self, def_ref: &str, value: &Ipld) -> Result<(), ValidationError> {
        if split_ref(def_ref).is_none_or(|(nsid, _)| nsid.is_none()) {
            return Err(unknown_schema(
                "Value",
                format!("{def_ref:?} is not a global reference"),
            ));
        }
        if self.lookup("", def_ref).is_none() {
            return Err(unknown_schema(
                "Value",
                format!("no definition {def_ref} in the catalog"),
            ));
        }
        Validator { catalog: self }.reference("", def_ref, value, &Path::root("Value"))
    }

    /// Validates the JSON input of a procedure against its `input` schema, if it has one.
    /// Paths start with `Input`.
    pub fn validate_input(&self, method: &Nsid, value: &Ipld) -> Result<(), ValidationError> {
        let body = match self.main_def(method, "Input")? {
            Def::Procedure(p) => p.input.as_ref(),
            other => return Err(not_a(method, other, "procedure", "Input")),
        };
        self.validate_body(method, body, value, "Input")
    }

    /// Validates the JSON output of a query or procedure against its `output` schema, if it
    /// has one. Paths start with `Output`.
    pub fn validate_output(&self, method: &Nsid, value: &Ipld) -> Result<(), ValidationError> {
        let body = match self.main_def(method, "Output")? {
            Def::Query(q) => q.output.as_ref(),
            Def::Procedure(p) => p.output.as_ref(),
            other => return Err(not_a(method, other, "query or procedure", "Output")),
        };
        self.validate_body(method, body, value, "Output")
    }

    fn validate_body(
        &self,
        method: &Nsid,
        body: Option<&Body>,
        value: &Ipld,
        root: &str,
    ) -> Result<(), ValidationError> {
        let Some(schema) = body.and_then(|b| b.schema.as_deref()) else {
            return Ok(());
        };
        let root = Path::root(root);
        if !matches!(value, Ipld::Map(_)) {
            return Err(root.err("must be an object"));
        }
        Validator { catalog: self }.field(method.as_str(), schema, value, &root)
    }

    /// The `main` definition of a document, or an `UnknownSchema` error under `root`.
    pub(super) fn main_def(&self, id: &Nsid, root: &str) -> Result<&Def, ValidationError> {
        self.get(id.as_str())
            .and_then(|doc| doc.defs.get("main"))
            .ok_or_else(|| unknown_schema(root, format!("no lexicon for {id} in the catalog")))
    }

    fn record_schema(&self, collection: &Nsid, root: &str) -> Result<&RecordDef, ValidationError> {
        match self.main_def(collection, root)? {
            Def::Record(record) => Ok(record),
            other => Err(not_a(collection, other, "record", root)),
        }
    }
}

fn not_a(id: &Nsid, def: &Def, expected: &str, root: &str) -> ValidationError {
    ValidationError::new(
        root,
        format!("{id} is a {} definition, not a {expected}", def.type_name()),
    )
}

fn type_mismatch(path: &Path<'_>, found: &str, expected: &str) -> ValidationError {
    if found.ends_with("#main") {
        path.err(format!(
            "must be {expected:?}: a $type never ends in #main, got {found:?}"
        ))
    } else {
        path.err(format!("must be {expected:?}, got {found:?}"))
    }
}

/// Walks a value and its schema together. Recursion follows the value's nesting, which is
/// capped at [`MAX_DEPTH`]; a `ref` never names another `ref` or a `union`, so schema
/// indirection adds at most two frames per level.
pub(super) struct Validator<'a> {
    pub(super) catalog: &'a Catalog,
}

impl Validator<'_> {
    /// Validates `value` as a field of type `def`, declared in document `base`.
    pub(super) fn field(
        &self,
        base: &str,
        def: &Def,
        value: &Ipld,
        path: &Path<'_>,
    ) -> Result<(), ValidationError> {
        if path.depth > MAX_DEPTH {
            return Err(path.err(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        match def {
            Def::Boolean(d) => boolean(d, value, path),
            Def::Integer(d) => integer(d, value, path),
            Def::String(d) => string(d, value, path),
            Def::Bytes(d) => bytes(d, value, path),
            Def::CidLink(_) => match value {
                Ipld::Link(_) => Ok(()),
                _ => Err(path.err("must be a CID link")),
            },
            Def::Blob(d) => blob(d, value, path),
            Def::Array(d) => self.array(base, d, value, path),
            Def::Object(d) => match value {
                Ipld::Map(map) => self.object(base, d, map, path),
                _ => Err(path.err("must be an object")),
            },
            Def::Ref(r) => self.reference(base, &r.reference, value, path),
            Def::Union(u) => self.union(base, u, value, path),
            Def::Unknown(_) => unknown(value, path),
            other => Err(path.schema_err(format!(
                "a {} definition cannot describe a value",
                other.type_name()
            ))),
        }
    }

    pub(super) fn object(
        &self,
        base: &str,
        def: &ObjectDef,
        map: &BTreeMap<String, Ipld>,
        path: &Path<'_>,
    ) -> Result<(), ValidationError> {
        for name in def.required.iter().flatten() {
            if !map.contains_key(name) {
                return Err(path.err(format!("must have the property {name:?}")));
            }
        }
        for (name, prop) in &def.properties {
            let Some(value) = map.get(name) else {
                continue;
            };
            let prop_path = path.key(name);
            if matches!(value, Ipld::Null) {
                if def.is_nullable(name) {
                    continue;
                }
                return Err(prop_path.err("must not be null"));
            }
            self.field(base, prop, value, &prop_path)?;
        }
        Ok(())
    }

    fn array(
        &self,
        base: &str,
        def: &ArrayDef,
        value: &Ipld,
        path: &Path<'_>,
    ) -> Result<(), ValidationError> {
        let Ipld::List(items) = value else {
            return Err(path.err("must be an array"));
        };
        let len = items.len() as u64;
        if let Some(max) = def.max_length
            && len > max
        {
            return Err(path.err(format!("must not have more than {max} elements")));
        }
        if let Some(min) = def.min_length
            && len < min
        {
            return Err(path.err(format!("must not have fewer than {min} elements")));
        }
        for (i, item) in items.iter().enumerate() {
            self.field(base, &def.items, item, &path.index(i))?;
        }
        Ok(())
    }

    /// A `ref` from document `base`. A referenced `record` requires its `$type`; a
    /// referenced `object` needs none, but one that is present must name that object.
    pub(super) fn reference(
        &self,
        base: &str,
        reference: &str,
        value: &Ipld,
        path: &Path<'_>,
    ) -> Result<(), ValidationError> {
        let Some((target_base, target)) = self.catalog.lookup(base, reference) else {
            return Err(path.schema_err(format!("reference {reference:?} does not resolve")));
        };
        let name = full_ref(base, reference);
        match target {
            Def::Record(record) => {
                let map = typed_map(value, path)?;
                match map.get("$type") {
                    Some(Ipld::String(t)) if *t == name => {}
                    Some(Ipld::String(t)) => {
                        return Err(type_mismatch(&path.key("$type"), t, &name));
                    }
                    _ => return Err(path.err(format!("must have a $type of {name:?}"))),
                }
                self.object(target_base, &record.record, map, path)
            }
            Def::Object(object) => {
                let Ipld::Map(map) = value else {
                    return Err(path.err("must be an object"));
                };
                match map.get("$type") {
                    None => {}
                    Some(Ipld::String(t))
                        if *t == name || t.strip_suffix("#main") == Some(name.as_str()) => {}
                    Some(Ipld::String(t)) => {
                        return Err(path
                            .key("$type")
                            .err(format!("must be {name:?} (or absent), got {t:?}")));
                    }
                    Some(_) => return Err(path.key("$type").err("must be a string")),
                }
                self.object(target_base, object, map, path)
            }
            Def::Ref(_) | Def::Union(_) => Err(path.schema_err(format!(
                "reference {reference:?} names a {}",
                target.type_name()
            ))),
            other => self.field(target_base, other, value, path),
        }
    }

    /// A `union` from document `base`: the value is an object whose `$type` picks the
    /// variant. An open union accepts types it does not list, unvalidated.
    fn union(
        &self,
        base: &str,
        def: &UnionDef,
        value: &Ipld,
        path: &Path<'_>,
    ) -> Result<(), ValidationError> {
        let map = typed_map(value, path)?;
        let t = match map.get("$type") {
            Some(Ipld::String(t)) => t,
            Some(_) => return Err(path.key("$type").err("must be a string")),
            None => {
                return Err(path.err(
                    "must be an object which includes the \"$type\" property (union member)",
                ));
            }
        };
        if t.ends_with("#main") {
            return Err(path
                .key("$type")
                .err(format!("a $type never ends in #main, got {t:?}")));
        }
        let Some(reference) = def.refs.iter().find(|r| full_ref(base, r) == *t) else {
            if def.is_closed() {
                let names: Vec<String> = def.refs.iter().map(|r| full_ref(base, r)).collect();
                return Err(path.key("$type").err(format!(
                    "must be one of {} (closed union), got {t:?}",
                    names.join(", ")
                )));
            }
            if split_ref(t).is_none_or(|(nsid, _)| nsid.is_none()) {
                return Err(path
                    .key("$type")
                    .err(format!("{t:?} is not a type name (nsid or nsid#name)")));
            }
            return Ok(());
        };
        let Some((target_base, target)) = self.catalog.lookup(base, reference) else {
            return Err(path.schema_err(format!("union member {reference:?} does not resolve")));
        };
        match target {
            Def::Object(object) => self.object(target_base, object, map, path),
            Def::Record(record) => self.object(target_base, &record.record, map, path),
            other => Err(path.schema_err(format!(
                "union member {reference:?} is a {}, not an object",
                other.type_name()
            ))),
        }
    }
}

fn typed_map<'v>(
    value: &'v Ipld,
    path: &Path<'_>,
) -> Result<&'v BTreeMap<String, Ipld>, ValidationError> {
    match value {
        Ipld::Map(map) => Ok(map),
        _ => Err(path.err("must be an object which includes the \"$type\" property")),
    }
}

fn unknown(value: &Ipld, path: &Path<'_>) -> Result<(), ValidationError> {
    match value {
        Ipld::Map(map) if matches!(map.get("$type"), Some(Ipld::String(t)) if t == "blob") => {
            Err(path.err("must be an object, not a blob"))
        }
        Ipld::Map(_) => Ok(()),
        Ipld::Bytes(_) => Err(path.err("must be an object, not bytes")),
        Ipld::Link(_) => Err(path.err("must be an object, not a CID link")),
        _ => Err(path.err("must be an object")),
    }
}

fn boolean(def: &BooleanDef, value: &Ipld, path: &Path<'_>) -> Result<(), ValidationError> {
    let Ipld::Bool(b) = value else {
        return Err(path.err("must be a boolean"));
    };
    if let Some(c) = def.const_value
        && *b != c
    {
        return Err(path.err(format!("must be {c}")));
    }
    Ok(())
}

fn integer(def: &IntegerDef, value: &Ipld, path: &Path<'_>) -> Result<(), ValidationError> {
    let Ipld::Integer(i) = value else {
        return Err(path.err("must be an integer"));
    };
    let i = *i;
    if let Some(c) = def.const_value
        && i != i128::from(c)
    {
        return Err(path.err(format!("must be {c}")));
    }
    if let Some(values) = &def.enum_values
        && !values.iter().any(|v| i128::from(*v) == i)
    {
        let list: Vec<String> = values.iter().map(i64::to_string).collect();
        return Err(path.err(format!("must be one of ({})", list.join("|"))));
    }
    if let Some(max) = def.maximum
        && i > i128::from(max)
    {
        return Err(path.err(format!("can not be greater than {max}")));
    }
    if let Some(min) = def.minimum
        && i < i128::from(min)
    {
        return Err(path.err(format!("can not be less than {min}")));
    }
    Ok(())
}

pub(super) fn string(
    def: &StringDef,
    value: &Ipld,
    path: &Path<'_>,
) -> Result<(), ValidationError> {
    let Ipld::String(s) = value else {
        return Err(path.err("must be a string"));
    };
    if let Some(c) = &def.const_value
        && s != c
    {
        return Err(path.err(format!("must be {c:?}")));
    }
    if let Some(values) = &def.enum_values
        && !values.contains(s)
    {
        return Err(path.err(format!("must be one of ({})", values.join("|"))));
    }
    let bytes = s.len() as u64;
    if let Some(max) = def.max_length
        && bytes > max
    {
        return Err(path.err(format!("must not be longer than {max} bytes (UTF-8)")));
    }
    if let Some(min) = def.min_length
        && bytes < min
    {
        return Err(path.err(format!("must not be shorter than {min} bytes (UTF-8)")));
    }
    // A grapheme has at least one byte, so short strings skip the count against a maximum.
    let needs_count = def.max_graphemes.is_some_and(|max| bytes > max)
        || def.min_graphemes.is_some_and(|min| min > 0);
    if needs_count {
        let graphemes = s.graphemes(true).count() as u64;
        if let Some(max) = def.max_graphemes
            && graphemes > max
        {
            return Err(path.err(format!("must not be longer than {max} graphemes")));
        }
        if let Some(min) = def.min_graphemes
            && graphemes < min
        {
            return Err(path.err(format!("must not be shorter than {min} graphemes")));
        }
    }
    if let Some(format) = def.format {
        check_format(format, s)
            .map_err(|e| path.err(format!("must be a valid {} ({e})", format.name())))?;
    }
    Ok(())
}

/// The string formats, with the most expansive syntax of each, as the spec asks; only
/// `datetime` is checked further (it must name a real point in time).
fn check_format(format: StringFormat, s: &str) -> Result<(), crate::syntax::Error> {
    match format {
        StringFormat::AtIdentifier => s.parse::<AtIdentifier>().map(drop),
        StringFormat::AtUri => s.parse::<AtUri>().map(drop),
        StringFormat::Cid => check_cid_syntax(s),
        StringFormat::Datetime => Datetime::parse_strict(s).map(drop),
        StringFormat::Did => s.parse::<Did>().map(drop),
        StringFormat::Handle => s.parse::<Handle>().map(drop),
        StringFormat::Nsid => s.parse::<Nsid>().map(drop),
        StringFormat::Tid => s.parse::<Tid>().map(drop),
        StringFormat::RecordKey => s.parse::<RecordKey>().map(drop),
        StringFormat::Uri => s.parse::<Uri>().map(drop),
        StringFormat::Language => s.parse::<Language>().map(drop),
    }
}

fn bytes(def: &BytesDef, value: &Ipld, path: &Path<'_>) -> Result<(), ValidationError> {
    let Ipld::Bytes(b) = value else {
        return Err(path.err("must be bytes"));
    };
    let len = b.len() as u64;
    if let Some(max) = def.max_length
        && len > max
    {
        return Err(path.err(format!("must not be larger than {max} bytes")));
    }
    if let Some(min) = def.min_length
        && len < min
    {
        return Err(path.err(format!("must not be smaller than {min} bytes")));
    }
    Ok(())
}

/// Only the current blob form (`$type: "blob"`) is accepted; the legacy `{cid, mimeType}`
/// form must not be written any more.
fn blob(def: &BlobDef, value: &Ipld, path: &Path<'_>) -> Result<(), ValidationError> {
    let Some(blob) = BlobRef::from_value(value) else {
        return Err(path.err("must be a blob reference"));
    };
    if let Ipld::Map(map) = value
        && !map.contains_key("$type")
    {
        return Err(path.err("must be a blob reference with $type \"blob\" (legacy form)"));
    }
    if let Some(accept) = &def.accept
        && !accept.is_empty()
        && !accept.iter().any(|p| mime_matches(p, &blob.mime_type))
    {
        return Err(path.err(format!(
            "blob MIME type {:?} is not accepted (accepts {})",
            blob.mime_type,
            accept.join(", ")
        )));
    }
    if let Some(max) = def.max_size
        && blob.size > max
    {
        return Err(path.err(format!(
            "blob is {} bytes, larger than the maximum of {max}",
            blob.size
        )));
    }
    Ok(())
}

/// Whether a MIME type matches an `accept` pattern (`type/subtype`, `type/*`, `*/*`).
/// Types compare case-insensitively (RFC 2045); parameters after `;` are ignored.
pub(super) fn mime_matches(pattern: &str, mime: &str) -> bool {
    let essence = mime.split(';').next().unwrap_or_default().trim();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    if kind.is_empty() || sub.is_empty() {
        return false;
    }
    if pattern == "*/*" {
        return true;
    }
    match pattern.strip_suffix("/*") {
        Some(pattern_kind) => kind.eq_ignore_ascii_case(pattern_kind),
        None => essence.eq_ignore_ascii_case(pattern),
    }
}
