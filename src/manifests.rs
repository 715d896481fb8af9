//! Reading manifests: YAML files and directories → a [`Snapshot`].
//!
//! ```text
//! paths → files (sorted walk) → YAML documents → known kinds → generated types → model
//! ```
//!
//! Each document is first read into a plain JSON value, as `kubectl` does, and only then into
//! the generated type of its kind, so that one object the generated types cannot represent (a
//! missing required field, `port: "80"`) is *refused* on its own, naming the object and the
//! field, rather than failing the parse of the whole file (RUST-NOTES "Traps"). kubectl would
//! refuse such an object too, so its file is not usable as it is: `render` and `status` stop
//! (exit 2) and `run --manifests` keeps the file's last good content, as for malformed YAML. A
//! route's experimental-channel filters do not refuse it: its rules that hold one are dropped
//! and reported ([`convert::route`]). Malformed YAML is fatal: no reliable snapshot can be
//! built from a file that cannot be parsed.

use std::fs;
use std::io::ErrorKind::NotFound;
use std::path::{Path, PathBuf};

use gateway_api::backendtlspolicies::BackendTlsPolicy;
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::referencegrants::ReferenceGrant;
use k8s_openapi::api::core::v1::{Namespace, Service};
use routes_core::model::{RouteKind, Snapshot};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::convert::{self, Object};
use crate::decode::decode_listing_unknown;
use crate::kinds::Kind;

/// What was read: the snapshot, what was replaced on the way, and the objects refused, in
/// reading order.
#[derive(Debug, Default)]
pub struct Loaded {
    pub snapshot: Snapshot,
    pub warnings: Vec<String>,
    /// Objects of a kind we read that cannot be decoded (file and line, object, field, why),
    /// left out of the snapshot: the file does not say what its author meant.
    pub refused: Vec<String>,
    /// Where each object read so far sits in its list of `snapshot`, by kind, namespace and
    /// name: a later definition replaces it there. A search of the list instead made reading
    /// 10,000 routes take seconds.
    places: std::collections::HashMap<(Kind, String, String), usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A YAML syntax error (or a document over serde-saphyr's safety budget).
    #[error("{file}{}: {message}", position(.location))]
    MalformedYaml { file: String, location: Option<(u64, u64)>, message: String },
}

fn position(location: &Option<(u64, u64)>) -> String {
    location.map(|(line, column)| format!(":{line}:{column}")).unwrap_or_default()
}

/// Reads every path in order. A directory is walked recursively, in byte order of the entry
/// names at each level, for `*.yaml` and `*.yml` files, so the same tree always loads the same
/// way (later duplicates replace earlier ones). A path named explicitly is read whatever its
/// extension, and followed if it is a symlink; it must be a regular file ([`crate::input`]).
///
/// Inside a directory, entries whose name starts with `..` are skipped: Kubernetes ConfigMap
/// and Secret volumes hold the real files under `..<timestamp>/` behind a `..data` symlink, with
/// a top-level symlink per key, so reading `..*` would load every object twice. Symlinked
/// files are followed (those per-key symlinks); symlinked directories are not (cycles), and are
/// reported as warnings.
pub fn load_paths(paths: &[PathBuf]) -> Result<Loaded, LoadError> {
    let mut loaded = Loaded::default();
    for path in paths {
        let metadata = fs::metadata(path).map_err(|source| unreadable(path, source))?;
        let mut files = Vec::new();
        if metadata.is_dir() {
            walk(path, Unreadable::Fail, &|_| false, &mut files, &mut loaded.warnings)?;
        } else {
            files.push(path.clone());
        }
        for file in files {
            let text = crate::input::read_to_string(&file).map_err(|source| unreadable(&file, source))?;
            load_str(&file.display().to_string(), &text, &mut loaded)?;
        }
    }
    Ok(loaded)
}

fn unreadable(path: &Path, source: std::io::Error) -> LoadError {
    LoadError::Unreadable { path: path.to_path_buf(), source }
}

/// What [`walk`] does with a directory or entry it cannot read: `render` and `status` fail
/// (unusable input); `run`'s watch takes one that vanished mid-walk (NotFound) for deleted,
/// since files come and go under it, and fails on any other error (a directory that cannot be
/// listed for want of file descriptors still holds its files: taken for empty, its objects
/// would be dropped from the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreadable {
    Fail,
    Warn,
}

/// The manifest files under `dir`, into `files`: sorted by name at each level, `*.yaml` and
/// `*.yml`, entries named `..*` (ConfigMap volume internals) and those `skip` names left
/// out, symlinked files followed, symlinked directories not (a warning says so).
pub fn walk(
    dir: &Path,
    on_error: Unreadable,
    skip: &dyn Fn(&str) -> bool,
    files: &mut Vec<PathBuf>,
    warnings: &mut Vec<String>,
) -> Result<(), LoadError> {
    walk_dir(dir, true, on_error, skip, files, warnings)
}

fn walk_dir(
    dir: &Path,
    root: bool,
    on_error: Unreadable,
    skip: &dyn Fn(&str) -> bool,
    files: &mut Vec<PathBuf>,
    warnings: &mut Vec<String>,
) -> Result<(), LoadError> {
    // Deleted since its parent was listed: nothing under it any more. The root itself must be
    // there (a root that vanished is an error, as when its metadata cannot be read).
    let gone = |e: &std::io::Error| on_error == Unreadable::Warn && !root && e.kind() == NotFound;
    let listed = fs::read_dir(dir).and_then(|entries| entries.collect::<Result<Vec<_>, _>>());
    let mut entries = match listed {
        Ok(entries) => entries,
        Err(e) if gone(&e) => return Ok(()),
        Err(source) => return Err(unreadable(dir, source)),
    };
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b"..") || skip(&name.to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        let file_type = match entry.file_type() {
            Ok(file_type) => file_type,
            Err(e) if on_error == Unreadable::Warn && e.kind() == NotFound => continue,
            Err(source) => return Err(unreadable(&path, source)),
        };
        if file_type.is_dir() {
            walk_dir(&path, false, on_error, skip, files, warnings)?;
            continue;
        }
        let is_yaml = path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml");
        // `metadata` follows symlinks: a ConfigMap key is a symlink to a regular file.
        match fs::metadata(&path) {
            Ok(m) if m.is_file() && is_yaml => files.push(path),
            Ok(m) if m.is_dir() && file_type.is_symlink() => {
                warnings.push(format!("{}: symlinked directory not followed", path.display()))
            }
            Ok(_) => {}
            // A dangling symlink (a ConfigMap volume swapping `..data` never leaves one).
            Err(e) if is_yaml => warnings.push(format!("{}: skipped: {e}", path.display())),
            Err(_) => {}
        }
    }
    Ok(())
}

/// Reads every YAML document of `text` (named `file_name` in messages) into `into`.
///
/// Empty documents, documents that are not mappings or lack `apiVersion`/`kind` (a
/// cloudflared config beside the manifests), and kinds we do not read are ignored. A `List`
/// (or `<Kind>List`) is expanded into its items.
pub fn load_str(file_name: &str, text: &str, into: &mut Loaded) -> Result<(), LoadError> {
    into.add(read_str(file_name, text)?);
    Ok(())
}

/// One file read and decoded, before it joins the others: [`Loaded::add`] puts it in as
/// [`load_str`] would, object by object and warning by warning, in the file's order. `run`
/// keeps each file's, so a change costs a read of the file that changed, not of every file.
#[derive(Clone, Debug, Default)]
pub struct FileRead {
    items: Vec<Item>,
    /// Objects that cannot be decoded, as in [`Loaded::refused`].
    pub refused: Vec<String>,
}

#[derive(Clone, Debug)]
enum Item {
    /// An object, where it was read (`file:line`), how warnings name it (`HTTPRoute ns/name`)
    /// and its key.
    Object {
        origin: String,
        label: String,
        key: (Kind, String, String),
        object: Box<Object>,
    },
    Warning(String),
}

/// Reads the YAML documents of one file (see [`load_str`]).
pub fn read_str(file_name: &str, text: &str) -> Result<FileRead, LoadError> {
    let documents: Vec<serde_saphyr::Spanned<Value>> =
        serde_saphyr::from_multiple_with_options(text, routes_core::yaml::manifest_options())
            .map_err(|e| malformed(file_name, &e))?;
    let mut read = FileRead::default();
    for document in documents {
        let origin = format!("{file_name}:{}", document.referenced.line());
        add_document(document.value, &origin, &mut read);
    }
    Ok(read)
}

impl Loaded {
    /// Adds a file's objects, each replacing an earlier one of the same kind, namespace and
    /// name (with a warning), and its warnings and refusals.
    pub fn add(&mut self, read: FileRead) {
        for item in read.items {
            match item {
                Item::Warning(warning) => self.warnings.push(warning),
                Item::Object { origin, label, key, object } => {
                    if self.store(key, *object) {
                        self.warnings
                            .push(format!("{origin}: {label} is defined again; this later definition wins"));
                    }
                }
            }
        }
        self.refused.extend(read.refused);
    }

    /// Adds `object`, or replaces the one of the same key read earlier; true when one was
    /// replaced. (HTTPRoutes and GRPCRoutes share a list, and their keys differ by kind.)
    fn store(&mut self, key: (Kind, String, String), object: Object) -> bool {
        use std::collections::hash_map::Entry;
        match self.places.entry(key) {
            Entry::Occupied(place) => {
                object.put_at(&mut self.snapshot, Some(*place.get()));
                true
            }
            Entry::Vacant(place) => {
                place.insert(object.put_at(&mut self.snapshot, None));
                false
            }
        }
    }
}

fn malformed(file_name: &str, e: &serde_saphyr::Error) -> LoadError {
    let routes_core::yaml::ErrorMessage { location, message } = routes_core::yaml::ErrorMessage::new(e);
    LoadError::MalformedYaml { file: file_name.to_string(), location, message }
}

fn add_document(mut value: Value, origin: &str, into: &mut FileRead) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    let (Some(api_version), Some(kind)) = (str_field(object, "apiVersion"), str_field(object, "kind")) else {
        if let Some(kind) = str_field(object, "kind") {
            warn_if_misspelt(None, &kind, origin, into);
        }
        return;
    };
    if kind.ends_with("List") {
        if let Some(Value::Array(items)) = object.remove("items") {
            expand_list(&api_version, &kind, items, origin, into);
            return;
        }
    }
    let group = api_version.rsplit_once('/').map_or("", |(group, _version)| group);
    let Some(known) = Kind::from_group_kind(group, &kind) else {
        warn_if_misspelt(Some(&api_version), &kind, origin, into);
        return;
    };
    // As from the API: the kind is known now (and the generated types do not take these
    // fields), and the status is not read (the model has none): one of another version, with
    // fields the types do not know, must not make the object unreadable.
    for key in ["apiVersion", "kind", "status"] {
        object.remove(key);
    }

    let metadata = object.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    let Some(metadata) = metadata.as_object_mut() else {
        into.refused.push(format!("{origin}: {kind}: metadata is not a mapping"));
        return;
    };
    let name = str_field(metadata, "name").unwrap_or_default();
    if name.is_empty() {
        into.refused.push(format!("{origin}: {kind}: metadata.name is missing or not a string"));
        return;
    }
    // As `kubectl apply` would: namespaced objects without a namespace land in `default`;
    // cluster-scoped objects have none.
    let namespace = if known.namespaced() {
        let namespace = match metadata.get("namespace") {
            None | Some(Value::Null) => None,
            Some(Value::String(ns)) => Some(ns.clone()).filter(|ns| !ns.is_empty()),
            // `namespace: 2024` or `namespace: no` (a YAML 1.1 boolean) was read as a number or a
            // boolean, and its text is lost; taking it for `default` would hand the object that
            // namespace's grants.
            Some(_) => {
                into.refused
                    .push(format!("{origin}: {kind} {name}: metadata.namespace is not a string (quote it)"));
                return;
            }
        };
        let namespace = namespace.unwrap_or_else(|| "default".to_string());
        metadata.insert("namespace".to_string(), Value::String(namespace.clone()));
        namespace
    } else {
        metadata.remove("namespace");
        String::new()
    };
    let label =
        if namespace.is_empty() { format!("{kind} {name}") } else { format!("{kind} {namespace}/{name}") };

    let route = |kind, value| {
        let (route, unknown) = convert::route_listing_unknown(kind, value).map_err(|e| e.to_string())?;
        known_fields_only(unknown)?;
        within_route_limits(&route).map(|()| Object::Route(route))
    };
    let object = match known {
        Kind::GatewayClass => {
            decode::<GatewayClass>(value).map(|o| Object::GatewayClass(convert::gateway_class(&o)))
        }
        Kind::Gateway => decode::<Gateway>(value).and_then(|o| {
            let o = convert::gateway(&o);
            at_most("spec.listeners", o.listeners.len(), 64)?;
            Ok(Object::Gateway(o))
        }),
        Kind::HttpRoute => route(RouteKind::Http, value),
        Kind::GrpcRoute => route(RouteKind::Grpc, value),
        Kind::ReferenceGrant => {
            decode::<ReferenceGrant>(value).map(|o| Object::ReferenceGrant(convert::reference_grant(&o)))
        }
        Kind::BackendTlsPolicy => decode::<BackendTlsPolicy>(value)
            .map(|o| Object::BackendTlsPolicy(convert::backend_tls_policy(&o))),
        Kind::Service => decode::<Service>(value).map(|o| Object::Service(convert::service(&o))),
        Kind::Namespace => decode::<Namespace>(value).map(|o| Object::Namespace(convert::namespace(&o))),
    };
    match object {
        Ok(object) => into.items.push(Item::Object {
            origin: origin.to_string(),
            label,
            key: (known, namespace, name),
            object: Box::new(object),
        }),
        Err(e) => into.refused.push(format!("{origin}: {label}: {e}")),
    }
}

/// `kind: List` (what `kubectl get -o yaml` prints) or `<Kind>List` (what the API returns,
/// whose items carry no `apiVersion`/`kind`: they are the list's).
fn expand_list(api_version: &str, kind: &str, items: Vec<Value>, origin: &str, into: &mut FileRead) {
    let item_kind = kind.strip_suffix("List").unwrap_or_default();
    for (index, mut item) in items.into_iter().enumerate() {
        if let (Some(object), false) = (item.as_object_mut(), item_kind.is_empty()) {
            object.entry("apiVersion").or_insert_with(|| Value::String(api_version.to_string()));
            object.entry("kind").or_insert_with(|| Value::String(item_kind.to_string()));
        }
        add_document(item, &format!("{origin} items[{index}]"), into);
    }
}

/// Decodes an object read from a file, refusing fields its type does not know.
fn decode<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    let (typed, unknown) = decode_listing_unknown(value).map_err(|e| e.to_string())?;
    known_fields_only(unknown).map(|()| typed)
}

/// The list sizes the CRDs allow (`maxItems`, and HTTPRoute's rule on all its matches), which
/// the API server enforces and the generated types do not: in a file, a route of 1,000
/// hostnames and 1,000 matches would render a million rules.
fn within_route_limits(route: &routes_core::model::Route) -> Result<(), String> {
    let grpc = route.kind == RouteKind::Grpc;
    at_most("spec.parentRefs", route.parent_refs.len(), 32)?;
    at_most("spec.hostnames", route.hostnames.len(), 16)?;
    at_most("spec.rules", route.rules.len(), 16)?;
    for (r, rule) in route.rules.iter().enumerate() {
        at_most(&format!("spec.rules[{r}].matches"), rule.matches.len(), if grpc { 8 } else { 64 })?;
        at_most(&format!("spec.rules[{r}].filters"), rule.filters().len(), 16)?;
        at_most(&format!("spec.rules[{r}].backendRefs"), rule.backends.len(), 16)?;
    }
    let matches: usize = route.rules.iter().map(|r| r.matches.len()).sum();
    if !grpc && matches > 128 {
        return Err(format!("spec.rules: {matches} matches in all, the CRD allows at most 128"));
    }
    Ok(())
}

fn at_most(field: &str, items: usize, limit: usize) -> Result<(), String> {
    if items > limit {
        return Err(format!("{field}: {items} items, the CRD allows at most {limit}"));
    }
    Ok(())
}

/// kubectl's strict field validation (its default) refuses an object with a field its schema
/// does not know, and the API server would prune it anyway: dropped silently, a typo such as
/// `hostname:` for `hostnames:` or `sectionname:` widens a route to the whole listener.
fn known_fields_only(unknown: Vec<String>) -> Result<(), String> {
    match unknown.as_slice() {
        [] => Ok(()),
        [one] => Err(format!("unknown field {one}")),
        many => Err(format!("unknown fields {}", many.join(", "))),
    }
}

/// A document that is not of a kind we read, but names one of them in another case
/// (`HttpRoute`), with our group misspelt (`gateway.networking.k8s.io.v1`), or without an
/// `apiVersion` (`apiversion:`): ignoring it without a word would leave the user wondering
/// where their route went. A kind of ours in an unrelated group (Istio's `Gateway`, Knative's
/// `Service`) is someone else's and ignored.
fn warn_if_misspelt(api_version: Option<&str>, kind: &str, origin: &str, into: &mut FileRead) {
    let Some(ours) = Kind::ALL.into_iter().find(|k| k.name().eq_ignore_ascii_case(kind)) else { return };
    let group = ours.group();
    let looks_ours = match api_version.map(str::to_ascii_lowercase) {
        None => true,
        Some(api) if group.is_empty() => !api.contains('/') || api.starts_with("core/"),
        Some(api) => api.contains(group),
    };
    if !looks_ours {
        return;
    }
    let meant = if group.is_empty() { "v1".to_string() } else { format!("{group}/v1") };
    let written = match api_version {
        Some(api_version) => format!("apiVersion {api_version:?}, kind {kind:?}"),
        None => format!("kind {kind:?} without apiVersion"),
    };
    into.items.push(Item::Warning(format!(
        "{origin}: ignored: {written} is not an object we read (apiVersion {meant}, kind {}?)",
        ours.name()
    )));
}

fn str_field(object: &Map<String, Value>, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).map(str::to_string)
}

#[cfg(test)]
#[path = "manifests_tests.rs"]
mod tests;
