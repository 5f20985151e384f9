//! HTTP retrieval of JWKS and discovery documents: timeout, no redirects, capped body.

use std::time::Duration;

use serde_json::Value;

use crate::jwks::{JwksError, MAX_DOCUMENT_BYTES};

/// Builds the HTTP client used for key fetches: rustls, no redirects, bounded connect time.
pub(crate) fn default_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .user_agent(concat!("jwt-exchange/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// GETs `url` and returns its body, refusing non-200 answers and bodies over the cap.
pub(crate) async fn get_capped(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<Vec<u8>, JwksError> {
    let mut resp = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(timeout)
        .send()
        .await
        .map_err(JwksError::Http)?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(JwksError::Status {
            status: resp.status().as_u16(),
        });
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(JwksError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(JwksError::Http)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(JwksError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Fetches an OpenID discovery document, checks its issuer and returns its `jwks_uri`.
pub(crate) async fn discover(
    client: &reqwest::Client,
    url: &str,
    issuer: &str,
    timeout: Duration,
    insecure_allow_http: bool,
) -> Result<String, JwksError> {
    let body = get_capped(client, url, timeout).await?;
    let doc = crate::json::parse_object(&body).map_err(|_| JwksError::InvalidDiscovery)?;
    let (Some(Value::String(found)), Some(Value::String(jwks_uri))) =
        (doc.get("issuer"), doc.get("jwks_uri"))
    else {
        return Err(JwksError::InvalidDiscovery);
    };
    if found != issuer {
        return Err(JwksError::DiscoveryIssuerMismatch);
    }
    crate::config::check_url("jwks_uri", jwks_uri, insecure_allow_http)
        .map_err(|_| JwksError::InvalidJwksUri)?;
    Ok(jwks_uri.clone())
}
