//! XRPC query parameters: strings from the URL, typed and checked by a `params` schema.

use std::collections::BTreeMap;

use super::catalog::Catalog;
use super::schema::*;
use super::validate::{Path, Validator};
use super::{ValidationError, ValidationErrorKind};
use crate::repo::cbor::Ipld;
use crate::syntax::Nsid;

/// Parameters by name, typed: `Ipld::Bool`, `Ipld::Integer`, `Ipld::String`, or an
/// `Ipld::List` of those for array parameters.
pub type ParamValues = BTreeMap<String, Ipld>;

impl Catalog {
    /// Types and validates the query parameters of an XRPC method (query, procedure or
    /// subscription) given as `(name, value)` pairs in URL order; array parameters repeat
    /// their name. Booleans are `true`/`false`, integers decimal. Parameters the schema does
    /// not define are ignored; absent ones with a `default` get it. Paths start with
    /// `Params`, e.g. `Params/limit`.
    pub fn validate_params<K: AsRef<str>, V: AsRef<str>>(
        &self,
        method: &Nsid,
        params: &[(K, V)],
    ) -> Result<ParamValues, ValidationError> {
        let schema = match self.main_def(method, "Params")? {
            Def::Query(q) => q.parameters.as_ref(),
            Def::Procedure(p) => p.parameters.as_ref(),
            Def::Subscription(s) => s.parameters.as_ref(),
            other => {
                return Err(ValidationError::new(
                    "Params",
                    format!(
                        "{method} is a {} definition, not an XRPC method",
                        other.type_name()
                    ),
                ));
            }
        };
        let mut out = ParamValues::new();
        let Some(schema) = schema else {
            return Ok(out);
        };
        let root = Path::root("Params");
        let validator = Validator { catalog: self };
        for (name, def) in &schema.properties {
            let path = root.key(name);
            let given: Vec<&str> = params
                .iter()
                .filter(|(k, _)| k.as_ref() == name)
                .map(|(_, v)| v.as_ref())
                .collect();
            let value = match (def, given.as_slice()) {
                (_, []) => {
                    if schema.required.iter().flatten().any(|r| r == name) {
                        return Err(root.err(format!("must have the property {name:?}")));
                    }
                    match default_of(def) {
                        Some(default) => default,
                        None => continue,
                    }
                }
                (Def::Array(array), values) => Ipld::List(
                    values
                        .iter()
                        .map(|v| convert(&array.items, v, &path))
                        .collect::<Result<_, _>>()?,
                ),
                (_, [value]) => convert(def, value, &path)?,
                (_, _) => return Err(path.err("must be given only once")),
            };
            validator.field(method.as_str(), def, &value, &path)?;
            out.insert(name.clone(), value);
        }
        Ok(out)
    }
}

fn default_of(def: &Def) -> Option<Ipld> {
    match def {
        Def::Boolean(d) => d.default.map(Ipld::Bool),
        Def::Integer(d) => d.default.map(|i| Ipld::Integer(i.into())),
        Def::String(d) => d.default.clone().map(Ipld::String),
        _ => None,
    }
}

/// One URL value as the scalar type of `def`.
fn convert(def: &Def, value: &str, path: &Path<'_>) -> Result<Ipld, ValidationError> {
    match def {
        Def::Boolean(_) => match value {
            "true" => Ok(Ipld::Bool(true)),
            "false" => Ok(Ipld::Bool(false)),
            _ => Err(path.err("must be a boolean (true or false)")),
        },
        Def::Integer(_) => {
            let digits = value.strip_prefix('-').unwrap_or(value);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(path.err("must be an integer"));
            }
            value
                .parse::<i64>()
                .map(|i| Ipld::Integer(i.into()))
                .map_err(|_| path.err("must be an integer in the 64-bit range"))
        }
        Def::String(_) => Ok(Ipld::String(value.to_owned())),
        other => Err(path
            .err(format!(
                "a {} cannot be a query parameter",
                other.type_name()
            ))
            .with_kind(ValidationErrorKind::BadSchema)),
    }
}
