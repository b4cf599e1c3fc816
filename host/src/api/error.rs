//! The API's one error shape, `{"error": {"code", "message", "field"?}}`, and
//! the JSON body extractor that turns bad bodies into it.
//!
//! When a body has several invalid fields, `field`/`message` name the first
//! and `fields` lists every one (`[{field, message}]`), so a client can show
//! each problem next to its input in one round trip.

use crate::validation::FieldError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub fields: Vec<FieldError>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    fields: &'a [FieldError],
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), field: None, fields: Vec::new() }
    }

    pub fn not_found(what: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} does not exist"))
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 500 without internals in the body: the cause goes to the log only.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(target: "flowstudio::api", "internal error: {cause}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the host could not complete the request; see its log")
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 400 naming one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::invalid(vec![FieldError::new(field, message)])
    }

    /// 400 naming every invalid field (at least one).
    pub fn invalid(fields: Vec<FieldError>) -> ApiError {
        let Some(first) = fields.first() else {
            return ApiError::bad_request("the request is invalid");
        };
        let message = if fields.len() == 1 {
            first.to_string()
        } else {
            format!("{first} (and {} more problems, see `fields`)", fields.len() - 1)
        };
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message,
            field: Some(first.field.clone()),
            fields,
        }
    }

    /// The `error.code` of a 401: the token is missing or not acceptable.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<Vec<FieldError>> for ApiError {
    fn from(fields: Vec<FieldError>) -> ApiError {
        ApiError::invalid(fields)
    }
}

impl From<FieldError> for ApiError {
    fn from(field: FieldError) -> ApiError {
        ApiError::invalid(vec![field])
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner { code: self.code, message: &self.message, field: self.field.as_deref(), fields: &self.fields },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: tell the client which scheme, and that the token (if any) was refused.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"flowstudio\", error=\"invalid_token\""));
        }
        response
    }
}

/// A JSON request body as a `serde_json::Value`. Resources validate it
/// themselves (field by field, so every problem is named); this extractor
/// only turns transport problems into [`ApiError`]s: wrong content type (415),
/// a body over the route's size limit (413), JSON that does not parse (400,
/// with line and column).
#[derive(Debug, Clone)]
pub struct JsonBody(pub serde_json::Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON with `Content-Type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("the body is not valid JSON: {}", source_text(&e))),
        JsonRejection::JsonDataError(e) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("the body is not valid JSON: {}", source_text(&e))),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        other => ApiError::new(other.status(), "invalid_request", format!("the body could not be read: {}", other.body_text())),
    }
}

/// serde_json's own message (`expected value at line 1 column 2`), without axum's prefix.
fn source_text(e: &dyn std::error::Error) -> String {
    let mut deepest: &dyn std::error::Error = e;
    while let Some(source) = deepest.source() {
        deepest = source;
    }
    deepest.to_string()
}

pub fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the body is larger than this route accepts")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(error: ApiError) -> (StatusCode, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    #[tokio::test]
    async fn several_invalid_fields_are_each_named() {
        let error = ApiError::invalid(vec![
            FieldError::new("cronExpression", "has 6 fields; 5 are expected"),
            FieldError::new("retryPolicy.maxAttempts", "must be between 1 and 10"),
        ]);
        let (status, body) = body_of(error).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "invalid_request");
        assert_eq!(body["error"]["field"], "cronExpression");
        assert_eq!(body["error"]["fields"][1]["field"], "retryPolicy.maxAttempts");
        assert_eq!(body["error"]["fields"][1]["message"], "must be between 1 and 10");
    }

    #[tokio::test]
    async fn an_internal_error_hides_its_cause() {
        let (status, body) = body_of(ApiError::internal("disk /secret/path is full")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("/secret/path"));
        assert!(body["error"].get("field").is_none());
    }
}
