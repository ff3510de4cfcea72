//! Credentials as InfluxDB 1.x checks them: `Authorization: Basic`, `Token`/`Bearer` (a token,
//! or 1.8's `username:password`), or the `u`/`p` query parameters; compared in constant time.

use hyper::header::{self, HeaderMap};

use super::{ApiError, Params};
use crate::config::Http;

/// `Ok` when auth is off or the request carries valid credentials.
pub(super) fn authenticate(
    http: &Http,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(), ApiError> {
    if !http.auth_enabled {
        return Ok(());
    }
    let user_ok = |name: &str, password: &str| {
        http.users.iter().any(|user| {
            constant_time_eq(user.name.as_bytes(), name.as_bytes())
                & constant_time_eq(user.password.as_bytes(), password.as_bytes())
        })
    };
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| ApiError::CredentialsMissing)?;
        let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
        let credentials = credentials.trim();
        let accepted = if scheme.eq_ignore_ascii_case("basic") {
            let decoded =
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, credentials)
                    .map_err(|_| ApiError::CredentialsMissing)?;
            let decoded = String::from_utf8(decoded).map_err(|_| ApiError::CredentialsMissing)?;
            let (name, password) = decoded
                .split_once(':')
                .ok_or(ApiError::CredentialsMissing)?;
            user_ok(name, password)
        } else if scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer") {
            let token_ok = http
                .tokens
                .iter()
                .any(|token| constant_time_eq(token.token.as_bytes(), credentials.as_bytes()));
            // InfluxDB 1.8's v2 compatibility: `Token username:password`.
            token_ok
                || credentials
                    .split_once(':')
                    .is_some_and(|(name, password)| user_ok(name, password))
        } else {
            return Err(ApiError::CredentialsMissing);
        };
        return if accepted {
            Ok(())
        } else {
            Err(ApiError::AuthorizationFailed)
        };
    }
    match (params.get("u"), params.get("p")) {
        (Some(name), password) if !name.is_empty() => {
            if user_ok(name, password.unwrap_or("")) {
                Ok(())
            } else {
                Err(ApiError::AuthorizationFailed)
            }
        }
        _ => Err(ApiError::CredentialsMissing),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_contents() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
