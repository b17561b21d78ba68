//! API errors: a status and `{"error": "<code>", "message": "<one line>"}`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode, header};
use keygate_proto::api::{ErrorBody, ErrorCode};

use crate::gate::GateError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        let message: String = message.into();
        // One line, always.
        let message = message.replace(['\n', '\r'], " ");
        Self {
            status,
            code,
            message,
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            message,
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let body = serde_json::to_vec(&ErrorBody {
            error: self.code,
            message: self.message,
        })
        .unwrap_or_default();
        let mut builder = Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(after) = self.retry_after {
            builder = builder.header(header::RETRY_AFTER, after.as_secs().max(1).to_string());
        }
        builder
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    }
}

impl From<GateError> for ApiError {
    fn from(e: GateError) -> Self {
        use crate::store::StoreError;
        let message = e.to_string();
        let (status, code) = match &e {
            GateError::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            GateError::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            GateError::Forbidden(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            GateError::AlreadyDecided(_) => (StatusCode::CONFLICT, ErrorCode::AlreadyDecided),
            GateError::NoGrant => (StatusCode::FORBIDDEN, ErrorCode::NoGrant),
            GateError::RateLimited(_, after) => {
                let mut err = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorCode::RateLimited,
                    message,
                );
                err.retry_after = Some(*after);
                return err;
            }
            GateError::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            GateError::AtMaxTtl(_) => (StatusCode::CONFLICT, ErrorCode::MaxTtlReached),
            GateError::Store(StoreError::Locked) => {
                (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::StoreLocked)
            }
            GateError::Store(StoreError::WrongPassphrase { .. } | StoreError::EmptyPassphrase) => {
                (StatusCode::FORBIDDEN, ErrorCode::WrongPassphrase)
            }
            GateError::Store(StoreError::Cluster(_)) | GateError::Cluster(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ClusterUnavailable,
            ),
            GateError::Store(_) | GateError::StoreTask(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::StoreError)
            }
            GateError::Audit(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::AuditFailed),
            GateError::Channel(_) => (StatusCode::BAD_GATEWAY, ErrorCode::ChannelFailed),
            GateError::Identity(crate::identity::IdentityError::Exists(_)) => {
                (StatusCode::CONFLICT, ErrorCode::Exists)
            }
            GateError::Identity(crate::identity::IdentityError::Unknown(_)) => {
                (StatusCode::NOT_FOUND, ErrorCode::NotFound)
            }
            GateError::Identity(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::IdentityError),
            GateError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::ShuttingDown),
            GateError::Encode(_) | GateError::Record(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal)
            }
        };
        if status.is_server_error() {
            tracing::error!("{message}");
        }
        Self::new(status, code, message)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::sync::Arc;

    use keygate_proto::{SecretName, SecretValue};

    use super::*;
    use crate::store::{Backend, CachedStore, CallError, SecretMeta, SecretStore, StoreError};

    /// A store whose every call panics, as a bug in a backend would.
    #[derive(Debug)]
    struct Panics;

    impl SecretStore for Panics {
        fn backend(&self) -> Backend {
            Backend::Memory
        }
        fn get(&self, _: &SecretName) -> Result<Option<SecretValue>, StoreError> {
            panic!("the store broke")
        }
        fn set(&self, _: &SecretName, _: &SecretValue) -> Result<SecretMeta, StoreError> {
            panic!("the store broke")
        }
        fn remove(&self, _: &SecretName) -> Result<bool, StoreError> {
            panic!("the store broke")
        }
        fn list(&self) -> Result<Vec<SecretMeta>, StoreError> {
            panic!("the store broke")
        }
    }

    /// A panicked store task is an internal store error (500) that keeps the panic as its
    /// source: never a conflict, never "not found".
    #[tokio::test]
    async fn a_panicked_store_task_is_a_500_that_keeps_its_source() {
        let store = CachedStore::new(Arc::new(Panics));
        let err = store
            .get(&SecretName::new("db/password").unwrap())
            .await
            .unwrap_err();
        let CallError::Task(join) = &err else {
            panic!("not a task failure: {err:?}")
        };
        assert!(join.is_panic());
        assert!(
            err.source()
                .is_some_and(<dyn std::error::Error>::is::<tokio::task::JoinError>)
        );

        let gate = GateError::from(err);
        assert!(matches!(gate, GateError::StoreTask(_)), "{gate:?}");
        assert!(
            gate.source()
                .is_some_and(<dyn std::error::Error>::is::<tokio::task::JoinError>)
        );

        let api = ApiError::from(gate);
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(api.code, ErrorCode::StoreError);
        assert_eq!(api.message, "the secret store's task failed");
    }

    /// What the store says keeps its own mapping: locked is 503, a failure 500.
    #[test]
    fn store_errors_map_to_their_statuses() {
        let locked = ApiError::from(GateError::from(CallError::Store(StoreError::Locked)));
        assert_eq!(locked.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(locked.code, ErrorCode::StoreLocked);
        let io = StoreError::Io {
            action: "read",
            path: "/x".into(),
            source: std::io::Error::other("disk gone"),
        };
        let gate = GateError::from(CallError::Store(io));
        let source = gate.source().and_then(std::error::Error::source);
        assert!(source.is_some_and(<dyn std::error::Error>::is::<std::io::Error>));
        let failed = ApiError::from(gate);
        assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(failed.code, ErrorCode::StoreError);
    }
}
