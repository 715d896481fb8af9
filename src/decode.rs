//! A raw object (a JSON value, as read from a file or the API) → a generated type, with the
//! field at fault named: `spec.listeners[0].port: invalid type: string "80", expected i32`,
//! not only `invalid type: string "80", expected i32` (which of a Gateway's fields?).

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
