//! The rules a schema document must follow, beyond its JSON shape.

use super::schema::*;
use super::{Error, is_def_name, split_ref};
use crate::syntax::{Language, Nsid, RecordKey};

/// Where a definition appears, which decides the types it may have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A named definition under `defs`.
    Named,
    /// An object property or array items.
    Field,
    /// A `params` property.
    Param,
    /// The items of an array `params` property.
    ParamItems,
    /// The schema of an XRPC body.
    Body,
    /// The schema of a subscription message.
    Message,
}

impl Place {
    fn allows(self, def: &Def) -> bool {
        match self {
            Place::Named => !matches!(
                def,
                Def::Ref(_) | Def::Union(_) | Def::Unknown(_) | Def::Params(_) | Def::Permission(_)
            ),
            Place::Field => matches!(
                def,
                Def::Boolean(_)
                    | Def::Integer(_)
                    | Def::String(_)
                    | Def::Bytes(_)
                    | Def::CidLink(_)
                    | Def::Blob(_)
                    | Def::Array(_)
                    | Def::Object(_)
                    | Def::Ref(_)
                    | Def::Union(_)
                    | Def::Unknown(_)
            ),
            Place::Param => matches!(
                def,
                Def::Boolean(_) | Def::Integer(_) | Def::String(_) | Def::Array(_)
            ),
            Place::ParamItems => {
                matches!(def, Def::Boolean(_) | Def::Integer(_) | Def::String(_))
            }
            Place::Body => matches!(def, Def::Object(_) | Def::Ref(_) | Def::Union(_)),
            Place::Message => matches!(def, Def::Union(_)),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Place::Named => "a named definition",
            Place::Field => "a field",
            Place::Param => "a query parameter",
            Place::ParamItems => "the items of a query parameter",
            Place::Body => "a body schema",
            Place::Message => "a subscription message schema",
        }
    }
}

impl LexiconDoc {
    /// Reads a schema document from JSON text and [checks](LexiconDoc::check) it.
    pub fn from_json(json: &str) -> Result<LexiconDoc, Error> {
        let doc: LexiconDoc =
            serde_json::from_str(json).map_err(|e| Error::Malformed(e.to_string()))?;
        doc.check()?;
        Ok(doc)
    }

    /// [`LexiconDoc::from_json`] for an already parsed JSON value.
    pub fn from_value(json: &serde_json::Value) -> Result<LexiconDoc, Error> {
        let doc: LexiconDoc = serde::Deserialize::deserialize(json)
            .map_err(|e: serde_json::Error| Error::Malformed(e.to_string()))?;
        doc.check()?;
        Ok(doc)
    }

    /// Checks the rules of the Lexicon language that the JSON shape does not express.
    /// References to other documents are not followed (see [`super::Catalog::check_refs`]).
    pub fn check(&self) -> Result<(), Error> {
        let checker = Checker {
            id: self.id.as_str(),
        };
        if self.lexicon != 1 {
            return Err(checker.err(
                "lexicon",
                format!("unsupported Lexicon version {}", self.lexicon),
            ));
        }
        if self.defs.is_empty() {
            return Err(checker.err("defs", "a lexicon needs at least one definition"));
        }
        for (name, def) in &self.defs {
            let path = format!("defs/{name}");
            if !is_def_name(name) {
                return Err(checker.err(&path, "invalid definition name"));
            }
            if def.is_primary() && name != "main" {
                return Err(checker.err(
                    &path,
                    format!("a {} definition must be named main", def.type_name()),
                ));
            }
            checker.def(def, Place::Named, &path)?;
        }
        Ok(())
    }
}

struct Checker<'a> {
    id: &'a str,
}

impl Checker<'_> {
    fn err(&self, path: &str, message: impl Into<String>) -> Error {
        Error::invalid(self.id, path, message)
    }

    fn def(&self, def: &Def, place: Place, path: &str) -> Result<(), Error> {
        if !place.allows(def) {
            return Err(self.err(
                path,
                format!("type {} cannot be {}", def.type_name(), place.describe()),
            ));
        }
        match def {
            Def::Record(d) => self.record(d, path),
            Def::Query(d) => {
                self.params_opt(d.parameters.as_ref(), path)?;
                self.body_opt(d.output.as_ref(), &format!("{path}/output"))?;
                self.errors(d.errors.as_deref(), path)
            }
            Def::Procedure(d) => {
                self.params_opt(d.parameters.as_ref(), path)?;
                self.body_opt(d.input.as_ref(), &format!("{path}/input"))?;
                self.body_opt(d.output.as_ref(), &format!("{path}/output"))?;
                self.errors(d.errors.as_deref(), path)
            }
            Def::Subscription(d) => {
                self.params_opt(d.parameters.as_ref(), path)?;
                self.def(
                    &d.message.schema,
                    Place::Message,
                    &format!("{path}/message/schema"),
                )?;
                self.errors(d.errors.as_deref(), path)
            }
            Def::PermissionSet(d) => self.permission_set(d, path),
            Def::Permission(d) => self.permission(d, path),
            Def::Params(d) => self.params(d, path),
            Def::Object(d) => self.object(d, path),
            Def::Array(d) => {
                self.min_max(d.min_length, d.max_length, "minLength", "maxLength", path)?;
                let items_place = if place == Place::Param {
                    Place::ParamItems
                } else {
                    Place::Field
                };
                self.def(&d.items, items_place, &format!("{path}/items"))
            }
            Def::String(d) => {
                self.min_max(d.min_length, d.max_length, "minLength", "maxLength", path)?;
                self.min_max(
                    d.min_graphemes,
                    d.max_graphemes,
                    "minGraphemes",
                    "maxGraphemes",
                    path,
                )?;
                self.const_default(d.const_value.is_some(), d.default.is_some(), path)
            }
            Def::Integer(d) => {
                if let (Some(min), Some(max)) = (d.minimum, d.maximum)
                    && min > max
                {
                    return Err(self.err(path, "minimum is greater than maximum"));
                }
                self.const_default(d.const_value.is_some(), d.default.is_some(), path)
            }
            Def::Boolean(d) => {
                self.const_default(d.const_value.is_some(), d.default.is_some(), path)
            }
            Def::Bytes(d) => {
                self.min_max(d.min_length, d.max_length, "minLength", "maxLength", path)
            }
            Def::Blob(d) => {
                for pattern in d.accept.iter().flatten() {
                    if !valid_mime_pattern(pattern) {
                        return Err(self.err(
                            &format!("{path}/accept"),
                            format!("invalid MIME type pattern {pattern:?}"),
                        ));
                    }
                }
                Ok(())
            }
            Def::Ref(d) => self.reference(&d.reference, &format!("{path}/ref")),
            Def::Union(d) => self.union(d, path),
            Def::Token(_) | Def::CidLink(_) | Def::Unknown(_) => Ok(()),
        }
    }

    fn record(&self, d: &RecordDef, path: &str) -> Result<(), Error> {
        match RecordKeyType::parse(&d.key) {
            None => {
                return Err(self.err(
                    &format!("{path}/key"),
                    format!(
                        "record key type must be tid, nsid, any or literal:<key>, not {:?}",
                        d.key
                    ),
                ));
            }
            Some(RecordKeyType::Literal(key)) if key.parse::<RecordKey>().is_err() => {
                return Err(self.err(
                    &format!("{path}/key"),
                    format!("{key:?} is not a valid record key"),
                ));
            }
            Some(_) => {}
        }
        self.object(&d.record, &format!("{path}/record"))
    }

    fn object(&self, d: &ObjectDef, path: &str) -> Result<(), Error> {
        self.names_in(d.required.as_deref(), &d.properties, "required", path)?;
        self.names_in(d.nullable.as_deref(), &d.properties, "nullable", path)?;
        for (name, prop) in &d.properties {
            let prop_path = format!("{path}/properties/{name}");
            if name.is_empty() {
                return Err(self.err(&prop_path, "property names must not be empty"));
            }
            self.def(prop, Place::Field, &prop_path)?;
        }
        Ok(())
    }

    fn params_opt(&self, d: Option<&ParamsDef>, path: &str) -> Result<(), Error> {
        match d {
            Some(d) => self.params(d, &format!("{path}/parameters")),
            None => Ok(()),
        }
    }

    fn params(&self, d: &ParamsDef, path: &str) -> Result<(), Error> {
        self.names_in(d.required.as_deref(), &d.properties, "required", path)?;
        for (name, prop) in &d.properties {
            let prop_path = format!("{path}/properties/{name}");
            if name.is_empty() {
                return Err(self.err(&prop_path, "parameter names must not be empty"));
            }
            self.def(prop, Place::Param, &prop_path)?;
        }
        Ok(())
    }

    /// Every name of a `required`/`nullable` list is a property, listed once.
    fn names_in(
        &self,
        names: Option<&[String]>,
        properties: &std::collections::BTreeMap<String, Def>,
        field: &str,
        path: &str,
    ) -> Result<(), Error> {
        let names = names.unwrap_or_default();
        for (i, name) in names.iter().enumerate() {
            if !properties.contains_key(name) {
                return Err(self.err(
                    &format!("{path}/{field}"),
                    format!("{name:?} is not a property"),
                ));
            }
            if names.iter().skip(i + 1).any(|n| n == name) {
                return Err(self.err(
                    &format!("{path}/{field}"),
                    format!("{name:?} is listed twice"),
                ));
            }
        }
        Ok(())
    }

    fn body_opt(&self, body: Option<&Body>, path: &str) -> Result<(), Error> {
        let Some(body) = body else {
            return Ok(());
        };
        if body.encoding.trim().is_empty() {
            return Err(self.err(&format!("{path}/encoding"), "encoding must not be empty"));
        }
        match &body.schema {
            Some(schema) => self.def(schema, Place::Body, &format!("{path}/schema")),
            None => Ok(()),
        }
    }

    fn errors(&self, errors: Option<&[XrpcError]>, path: &str) -> Result<(), Error> {
        for (i, e) in errors.unwrap_or_default().iter().enumerate() {
            if e.name.is_empty() || e.name.chars().any(char::is_whitespace) {
                return Err(self.err(
                    &format!("{path}/errors/{i}"),
                    "error names must be non-empty, without whitespace",
                ));
            }
        }
        Ok(())
    }

    fn permission_set(&self, d: &PermissionSetDef, path: &str) -> Result<(), Error> {
        for (field, langs) in [
            ("title:lang", &d.title_lang),
            ("detail:lang", &d.detail_lang),
        ] {
            for lang in langs.iter().flat_map(|m| m.keys()) {
                if lang.parse::<Language>().is_err() {
                    return Err(self.err(
                        &format!("{path}/{field}"),
                        format!("{lang:?} is not a language tag"),
                    ));
                }
            }
        }
        for (i, p) in d.permissions.iter().enumerate() {
            self.permission(p, &format!("{path}/permissions/{i}"))?;
        }
        Ok(())
    }

    /// The `repo` and `rpc` resources are checked; others are not supported in schemas and
    /// are ignored, as the permission spec asks.
    fn permission(&self, d: &PermissionDef, path: &str) -> Result<(), Error> {
        let nsids = |field: &str, list: &Option<Vec<String>>, wildcard: bool| {
            let list = list.as_deref().unwrap_or_default();
            if list.is_empty() {
                return Err(self.err(
                    &format!("{path}/{field}"),
                    format!("a {} permission needs a non-empty {field}", d.resource),
                ));
            }
            for (i, item) in list.iter().enumerate() {
                if !(wildcard && item == "*") && item.parse::<Nsid>().is_err() {
                    return Err(self.err(
                        &format!("{path}/{field}/{i}"),
                        format!("{item:?} is not an NSID"),
                    ));
                }
                if list.iter().skip(i + 1).any(|other| other == item) {
                    return Err(self.err(
                        &format!("{path}/{field}"),
                        format!("{item:?} is listed twice"),
                    ));
                }
            }
            Ok(())
        };
        match d.resource.as_str() {
            "repo" => {
                nsids("collection", &d.collection, false)?;
                let actions = d.action.as_deref().unwrap_or_default();
                for (i, action) in actions.iter().enumerate() {
                    if !matches!(action.as_str(), "create" | "update" | "delete") {
                        return Err(self.err(
                            &format!("{path}/action/{i}"),
                            format!("unknown repo action {action:?}"),
                        ));
                    }
                    if actions.iter().skip(i + 1).any(|other| other == action) {
                        return Err(self.err(
                            &format!("{path}/action"),
                            format!("{action:?} is listed twice"),
                        ));
                    }
                }
                Ok(())
            }
            "rpc" => {
                // The interop catalog uses `lxm: ["*"]` with `inheritAud`, so the wildcard is
                // accepted here (never together with `aud: "*"`).
                nsids("lxm", &d.lxm, true)?;
                let inherit = d.inherit_aud == Some(true);
                match d.aud.as_deref() {
                    None if inherit => Ok(()),
                    None => Err(self.err(path, "an rpc permission needs aud or inheritAud")),
                    Some(_) if inherit => Err(self.err(
                        path,
                        "an rpc permission cannot have both aud and inheritAud",
                    )),
                    Some("*") if d.lxm.iter().flatten().any(|l| l == "*") => {
                        Err(self.err(path, "aud and lxm cannot both be the wildcard"))
                    }
                    Some("*") => Ok(()),
                    Some(_) => Err(self.err(
                        &format!("{path}/aud"),
                        "in a permission set, aud must be the wildcard",
                    )),
                }
            }
            _ => Ok(()),
        }
    }

    fn union(&self, d: &UnionDef, path: &str) -> Result<(), Error> {
        if d.is_closed() && d.refs.is_empty() {
            return Err(self.err(path, "a closed union needs at least one ref"));
        }
        let mut seen: Vec<String> = Vec::with_capacity(d.refs.len());
        for (i, reference) in d.refs.iter().enumerate() {
            let ref_path = format!("{path}/refs/{i}");
            self.reference(reference, &ref_path)?;
            let full = full_ref(self.id, reference);
            if seen.contains(&full) {
                return Err(self.err(&ref_path, format!("{reference:?} is listed twice")));
            }
            seen.push(full);
        }
        Ok(())
    }

    fn reference(&self, reference: &str, path: &str) -> Result<(), Error> {
        if split_ref(reference).is_none() {
            return Err(self.err(
                path,
                format!("{reference:?} is not a reference (#name, nsid or nsid#name)"),
            ));
        }
        Ok(())
    }

    fn min_max(
        &self,
        min: Option<u64>,
        max: Option<u64>,
        min_name: &str,
        max_name: &str,
        path: &str,
    ) -> Result<(), Error> {
        if let (Some(min), Some(max)) = (min, max)
            && min > max
        {
            return Err(self.err(path, format!("{min_name} is greater than {max_name}")));
        }
        Ok(())
    }

    fn const_default(&self, has_const: bool, has_default: bool, path: &str) -> Result<(), Error> {
        if has_const && has_default {
            return Err(self.err(path, "const and default are mutually exclusive"));
        }
        Ok(())
    }
}

/// `type/subtype`, `type/*` or `*/*`; no partial globs and no lone `*`.
pub(crate) fn valid_mime_pattern(pattern: &str) -> bool {
    let Some((kind, sub)) = pattern.split_once('/') else {
        return false;
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(
                        b,
                        b'!' | b'#' | b'$' | b'&' | b'-' | b'^' | b'_' | b'.' | b'+'
                    )
            })
    };
    match (kind, sub) {
        ("*", "*") => true,
        ("*", _) => false,
        (kind, "*") => token(kind),
        (kind, sub) => token(kind) && token(sub),
    }
}

/// The canonical full form of a (well-formed) reference made inside document `base`:
/// `nsid` for a `main` definition, `nsid#name` otherwise.
pub(crate) fn full_ref(base: &str, reference: &str) -> String {
    match split_ref(reference) {
        Some((nsid, "main")) => nsid.unwrap_or(base).to_owned(),
        Some((nsid, name)) => format!("{}#{name}", nsid.unwrap_or(base)),
        None => reference.to_owned(),
    }
}
