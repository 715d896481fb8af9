//! A raw object (a JSON value, as read from a file or the API) → a generated type, with the
//! field at fault named: `spec.listeners[0].port: invalid type: string "80", expected i32`,
//! not only `invalid type: string "80", expected i32` (which of a Gateway's fields?); and, for
//! files, the fields the type does not know (`spec.hostname` for `spec.hostnames`), which
//! decoding drops without a word.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a raw object could not be decoded: the path of the field, then serde's message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(#[from] serde_path_to_error::Error<serde_json::Error>);

/// Decodes `raw` into `T`, naming the field at fault when it cannot.
pub fn decode<T: DeserializeOwned>(raw: Value) -> Result<T, DecodeError> {
    Ok(serde_path_to_error::deserialize(raw)?)
}

/// Decodes `raw` into `T` like [`decode`], and lists the fields of `raw` that `T` does not
/// know, in input order (`spec.parentRefs[0].sectionname`).
pub fn decode_listing_unknown<T: DeserializeOwned>(raw: Value) -> Result<(T, Vec<String>), DecodeError> {
    let mut unknown = Vec::new();
    let mut note = |path: serde_ignored::Path| unknown.push(dotted(&path));
    let ignored = serde_ignored::Deserializer::new(raw, &mut note);
    let value = serde_path_to_error::deserialize(ignored)?;
    Ok((value, unknown))
}

/// `spec.rules[0].matches`, as serde_path_to_error writes its paths.
fn dotted(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", dotted(parent)),
        Path::Map { parent, key } => match dotted(parent) {
            parent if parent.is_empty() => key.clone(),
            parent => format!("{parent}.{key}"),
        },
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => {
            dotted(parent)
        }
    }
}
