//! The tunnel credentials file (`cloudflared tunnel create` writes it): only `TunnelID` is
//! read. `TunnelSecret` is never kept, printed or logged: errors name the file and a position,
//! never its content.

use std::path::Path;

use serde::Deserialize;

#[derive(Deserialize)]
struct Credentials {
    #[serde(rename = "TunnelID")]
    tunnel_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{path}: cannot read the tunnel credentials file: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: not a cloudflared tunnel credentials file (JSON with a TunnelID string; error at line {line}, column {column})")]
    Format { path: String, line: usize, column: usize },
    #[error("{0}")]
    TunnelId(String),
}

pub fn read_tunnel_id(path: &Path) -> Result<String, CredentialsError> {
    let shown = path.display().to_string();
    let text = crate::input::read_to_string(path)
        .map_err(|source| CredentialsError::Read { path: shown.clone(), source })?;
    // serde_json's messages can quote values; keep only the position so that the secret never
    // reaches a terminal or a log.
    let credentials: Credentials = serde_json::from_str(&text).map_err(|e| CredentialsError::Format {
        path: shown.clone(),
        line: e.line(),
        column: e.column(),
    })?;
    // Not the value: a file with its fields mixed up would print the secret.
    check_tunnel_id(&credentials.tunnel_id).map_err(|_| {
        CredentialsError::TunnelId(format!("{shown}: its TunnelID is not a UUID (value not shown)"))
    })
}

/// A tunnel id is a UUID (`6ff42ae2-765d-4adf-8112-31c55c1551ef`); returned in lower case.
pub fn check_tunnel_id(id: &str) -> Result<String, CredentialsError> {
    let groups: Vec<&str> = id.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let hex = groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
    if lengths == [8, 4, 4, 4, 12] && hex {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(CredentialsError::TunnelId(format!("tunnel id {id:?} is not a UUID")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tunnel_id_and_never_echoes_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.json");
        std::fs::write(&good, r#"{"AccountTag":"acc","TunnelSecret":"c2VjcmV0","TunnelID":"6FF42AE2-765d-4adf-8112-31c55c1551ef"}"#).unwrap();
        assert_eq!(read_tunnel_id(&good).unwrap(), "6ff42ae2-765d-4adf-8112-31c55c1551ef");

        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"TunnelSecret":"c2VjcmV0","TunnelID":12}"#).unwrap();
        let message = read_tunnel_id(&bad).unwrap_err().to_string();
        assert!(!message.contains("c2VjcmV0"), "{message}");
        assert!(message.contains("bad.json"), "{message}");

        let not_uuid = dir.path().join("id.json");
        std::fs::write(&not_uuid, r#"{"TunnelSecret":"c2VjcmV0","TunnelID":"abc"}"#).unwrap();
        let message = read_tunnel_id(&not_uuid).unwrap_err().to_string();
        assert!(message.contains("not a UUID") && !message.contains("c2VjcmV0"), "{message}");
        // Fields mixed up: the secret where the id belongs is not printed either.
        std::fs::write(&not_uuid, r#"{"TunnelSecret":"abc","TunnelID":"c2VjcmV0"}"#).unwrap();
        let message = read_tunnel_id(&not_uuid).unwrap_err().to_string();
        assert!(message.contains("not a UUID") && !message.contains("c2VjcmV0"), "{message}");
    }

    #[test]
    fn tunnel_id_must_be_a_uuid() {
        for (name, id, ok) in [
            ("uuid", "6ff42ae2-765d-4adf-8112-31c55c1551ef", true),
            ("short", "6ff42ae2-765d-4adf-8112", false),
            ("not_hex", "6ff42ae2-765d-4adf-8112-31c55c1551eg", false),
            ("empty", "", false),
        ] {
            assert_eq!(check_tunnel_id(id).is_ok(), ok, "{name}");
        }
    }
}
