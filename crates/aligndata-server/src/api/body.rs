//! `JsonBody<T>`: the request body as `T`, with errors that name the field.
//!
//! Why not axum's `Json`: its rejections are plain text and do not say which field was wrong.
//! Here the body is read under the router's size limit (413 beyond it), parsed as JSON (400 when
//! it is not JSON), then deserialised with `serde_path_to_error` so a wrong type, a missing field
//! or an unknown field comes back as 422 with `"field": "rating"`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;

pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(status, "request body too large")
            } else {
                ApiError::new(status, rejection.body_text())
            }
        })?;
        parse(&bytes).map(JsonBody)
    }
}

/// Parses a JSON body into `T`, naming the field on failure.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "request body must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = err.inner().to_string();
        let field = if path == "." || path.is_empty() {
            // Missing and unknown fields are reported at the parent: the name is in backticks.
            message.split('`').nth(1).unwrap_or("body").to_string()
        } else {
            path
        };
        ApiError::invalid(&field, message)
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Probe {
        rating: i64,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse::<Probe>(br#"{"rating": "5"}"#).unwrap_err();
        assert_eq!(
            (e.status, e.field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("rating"))
        );
        let e = parse::<Probe>(br#"{}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("rating"));
        let e = parse::<Probe>(br#"{"rating": 1, "ratin": 2}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("ratin"));
        let e = parse::<Probe>(br#"{"rating": 1, "tags": ["a", 3]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("tags[1]"));
        assert_eq!(
            parse::<Probe>(b"{not json").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            parse::<Probe>(b"[1]").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
