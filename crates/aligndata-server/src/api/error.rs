//! The one error type handlers return: a status and a JSON body `{"error": ..., "field": ...}`.
//!
//! Why one type: every rejection a client can see (auth, limits, malformed JSON, validation,
//! missing rows) has the same shape, so clients need one error path. Internal errors are logged
//! with their cause and answered with a generic message: database details never leak.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub field: Option<String>,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// 422 naming the offending field.
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: message.into(),
            field: Some(field.to_string()),
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: &str) -> ApiError {
        self.field = Some(field.to_string());
        self
    }

    /// 500; the cause goes to the log, not to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        eprintln!("aligndata serve: internal error: {cause}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::NotFound { field, .. } => {
                ApiError::new(StatusCode::NOT_FOUND, err.to_string()).with_field(field)
            }
            StoreError::Invalid { field, message } => ApiError::invalid(field, message),
            StoreError::Conflict { field, message } => {
                ApiError::new(StatusCode::CONFLICT, message).with_field(field)
            }
            StoreError::KeyRevoked => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid or revoked API key")
            }
            StoreError::Db(sqlx::Error::PoolTimedOut) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "database busy; retry")
            }
            other => ApiError::internal(&other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match &self.field {
            Some(field) => json!({ "error": self.message, "field": field }),
            None => json!({ "error": self.message }),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
