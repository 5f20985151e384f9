//! Claim sets shaped like real IdPs' client-credentials tokens.

use serde_json::{json, Value};

/// Entra ID (v2.0) tenant id used by fixtures.
pub const ENTRA_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
/// Entra issuer for [`ENTRA_TENANT`].
pub const ENTRA_ISSUER: &str =
    "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0";
/// Audience of the fixture API.
pub const ENTRA_AUDIENCE: &str = "api://lakefs";
/// Auth0 issuer used by fixtures.
pub const AUTH0_ISSUER: &str = "https://example-tenant.us.auth0.com/";
/// Auth0 audience used by fixtures.
pub const AUTH0_AUDIENCE: &str = "https://lakefs.example.com/api";

/// An Entra ID v2.0 app-only (client-credentials) access token's claims, valid for an hour
/// from `now`: `oid` is the service principal, `roles` the app roles.
pub fn entra(now: i64, oid: &str, roles: &[&str]) -> Value {
    json!({
        "aud": ENTRA_AUDIENCE,
        "iss": ENTRA_ISSUER,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "aio": "k2BgYFh2ZfY0",
        "azp": "0b6f7c4d-2b1e-4f6a-9a7e-3c5d2e1f0a9b",
        "azpacr": "1",
        "oid": oid,
        "rh": "0.AAAA",
        "roles": roles,
        "sub": oid,
        "tid": ENTRA_TENANT,
        "uti": "Qm9vdHN0cmFw",
        "ver": "2.0",
    })
}

/// An Auth0 machine-to-machine (client-credentials) access token's claims, valid for a day
/// from `now`: `sub` is `<client>@clients`, `permissions` the API permissions.
pub fn auth0(now: i64, client_id: &str, permissions: &[&str]) -> Value {
    json!({
        "iss": AUTH0_ISSUER,
        "sub": format!("{client_id}@clients"),
        "aud": AUTH0_AUDIENCE,
        "iat": now,
        "exp": now + 86_400,
        "scope": permissions.join(" "),
        "gty": "client-credentials",
        "azp": client_id,
        "permissions": permissions,
    })
}
