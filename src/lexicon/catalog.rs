//! A set of schema documents, keyed by NSID, and reference resolution.

use std::collections::BTreeMap;
use std::path::Path;

use super::schema::*;
use super::{Error, split_ref};
use crate::syntax::Nsid;

/// Lexicon documents by NSID. Build one with [`Catalog::builtin`] (the project's schemas) or
/// [`Catalog::new`] and [`Catalog::add`] / [`Catalog::add_json`] / [`Catalog::load_dir`].
///
/// Adding a document checks it on its own; references between documents are only checked
/// by [`Catalog::check_refs`], so documents can be added in any order.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    docs: BTreeMap<String, LexiconDoc>,
}

/// How a definition is referred to, which limits what it may be.
#[derive(Clone, Copy)]
enum RefUse {
    Ref,
    Union,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Every schema of the project's `lexicons/` folder (`com.atproto.*`, `app.bsky.*`, …),
    /// embedded in the binary at compile time, with all references checked.
    pub fn builtin() -> Result<Catalog, Error> {
        let mut catalog = Catalog::new();
        for (file, json) in super::embedded::FILES {
            catalog.add_json(json).map_err(|e| Error::InFile {
                file: format!("lexicons/{file}"),
                source: Box::new(e),
            })?;
        }
        catalog.check_refs()?;
        Ok(catalog)
    }

    /// Adds one document after [checking](LexiconDoc::check) it. A document whose `id` is
    /// already present is refused.
    pub fn add(&mut self, doc: LexiconDoc) -> Result<(), Error> {
        doc.check()?;
        if self.docs.contains_key(doc.id.as_str()) {
            return Err(Error::Duplicate(doc.id.to_string()));
        }
        self.docs.insert(doc.id.to_string(), doc);
        Ok(())
    }

    /// Reads and adds one document from JSON text; returns its NSID.
    pub fn add_json(&mut self, json: &str) -> Result<Nsid, Error> {
        let doc: LexiconDoc =
            serde_json::from_str(json).map_err(|e| Error::Malformed(e.to_string()))?;
        let id = doc.id.clone();
        self.add(doc)?;
        Ok(id)
    }

    /// Adds every `*.json` file under `dir`, recursively, in path order. Returns how many
    /// documents were added. Stops at the first file that fails.
    pub fn load_dir(&mut self, dir: impl AsRef<Path>) -> Result<usize, Error> {
        let mut files = Vec::new();
        collect_json_files(dir.as_ref(), &mut files)?;
        files.sort();
        for file in &files {
            let json = std::fs::read_to_string(file).map_err(|e| Error::Io {
                path: file.display().to_string(),
                message: e.to_string(),
            })?;
            self.add_json(&json).map_err(|e| Error::InFile {
                file: file.display().to_string(),
                source: Box::new(e),
            })?;
        }
        Ok(files.len())
    }

    /// The document with this NSID.
    pub fn get(&self, id: &str) -> Option<&LexiconDoc> {
        self.docs.get(id)
    }

    /// The NSIDs of all documents, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.docs.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The definition a global reference (`nsid` for `main`, or `nsid#name`) names.
    pub fn resolve(&self, reference: &str) -> Option<&Def> {
        self.lookup("", reference).map(|(_, def)| def)
    }

    /// The `record` definition of a collection.
    pub fn record_def(&self, collection: &Nsid) -> Option<&RecordDef> {
        match self.get(collection.as_str())?.defs.get("main")? {
            Def::Record(record) => Some(record),
            _ => None,
        }
    }

    /// Resolves a reference made inside document `base` (`#name` is local to it). Returns the
    /// id of the document holding the definition, and the definition.
    pub(crate) fn lookup<'a>(&'a self, base: &str, reference: &str) -> Option<(&'a str, &'a Def)> {
        let (nsid, name) = split_ref(reference)?;
        let nsid = match nsid {
            Some(nsid) => nsid,
            None if base.is_empty() => return None,
            None => base,
        };
        let (id, doc) = self.docs.get_key_value(nsid)?;
        Some((id.as_str(), doc.defs.get(name)?))
    }

    /// Checks that every `ref` and union member in every document resolves, and to a kind of
    /// definition it may name: a `ref` to a data type (not a token or an XRPC/permission
    /// definition), a union member to an `object` or `record`.
    pub fn check_refs(&self) -> Result<(), Error> {
        for (id, doc) in &self.docs {
            let mut found = Vec::new();
            for (name, def) in &doc.defs {
                collect_refs(def, format!("defs/{name}"), &mut found);
            }
            for (path, reference, usage) in found {
                let Some((_, target)) = self.lookup(id, reference) else {
                    return Err(Error::invalid(
                        id,
                        &path,
                        format!("reference {reference:?} does not resolve"),
                    ));
                };
                let allowed = match usage {
                    RefUse::Ref => matches!(
                        target,
                        Def::Record(_)
                            | Def::Object(_)
                            | Def::Array(_)
                            | Def::String(_)
                            | Def::Integer(_)
                            | Def::Boolean(_)
                            | Def::Bytes(_)
                            | Def::CidLink(_)
                            | Def::Blob(_)
                    ),
                    RefUse::Union => matches!(target, Def::Record(_) | Def::Object(_)),
                };
                if !allowed {
                    let what = match usage {
                        RefUse::Ref => "a ref",
                        RefUse::Union => "a union member",
                    };
                    return Err(Error::invalid(
                        id,
                        &path,
                        format!(
                            "reference {reference:?} names a {} definition, which cannot be {what}",
                            target.type_name()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn collect_json_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Io {
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            collect_json_files(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Every reference inside a definition, with its path and how it is used.
fn collect_refs<'a>(def: &'a Def, path: String, out: &mut Vec<(String, &'a str, RefUse)>) {
    let props = |props: &'a BTreeMap<String, Def>, path: &str, out: &mut Vec<_>| {
        for (name, prop) in props {
            collect_refs(prop, format!("{path}/properties/{name}"), out);
        }
    };
    match def {
        Def::Ref(r) => out.push((format!("{path}/ref"), &r.reference, RefUse::Ref)),
        Def::Union(u) => {
            for (i, r) in u.refs.iter().enumerate() {
                out.push((format!("{path}/refs/{i}"), r, RefUse::Union));
            }
        }
        Def::Record(r) => props(&r.record.properties, &format!("{path}/record"), out),
        Def::Object(o) => props(&o.properties, &path, out),
        Def::Params(p) => props(&p.properties, &path, out),
        Def::Array(a) => collect_refs(&a.items, format!("{path}/items"), out),
        Def::Query(q) => {
            if let Some(p) = &q.parameters {
                props(&p.properties, &format!("{path}/parameters"), out);
            }
            body_refs(q.output.as_ref(), format!("{path}/output"), out);
        }
        Def::Procedure(p) => {
            if let Some(params) = &p.parameters {
                props(&params.properties, &format!("{path}/parameters"), out);
            }
            body_refs(p.input.as_ref(), format!("{path}/input"), out);
            body_refs(p.output.as_ref(), format!("{path}/output"), out);
        }
        Def::Subscription(s) => {
            if let Some(p) = &s.parameters {
                props(&p.properties, &format!("{path}/parameters"), out);
            }
            collect_refs(&s.message.schema, format!("{path}/message/schema"), out);
        }
        Def::PermissionSet(_)
        | Def::Permission(_)
        | Def::Token(_)
        | Def::String(_)
        | Def::Integer(_)
        | Def::Boolean(_)
        | Def::Bytes(_)
        | Def::CidLink(_)
        | Def::Blob(_)
        | Def::Unknown(_) => {}
    }
}

fn body_refs<'a>(body: Option<&'a Body>, path: String, out: &mut Vec<(String, &'a str, RefUse)>) {
    if let Some(schema) = body.and_then(|b| b.schema.as_deref()) {
        collect_refs(schema, format!("{path}/schema"), out);
    }
}
