//! SDK errors to port errors: throttling and transport problems are retryable, the rest is not.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use tally_engine::PortError;

pub fn port_error<E, R>(operation: &str, err: SdkError<E, R>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let detail = format!("{operation}: {}", DisplayErrorContext(&err));
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            PortError::Transient(detail)
        }
        SdkError::ServiceError(se) => match se.err().code().unwrap_or_default() {
            "ThrottlingException"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded"
            | "LimitExceededException"
            | "SlowDown"
            | "KMSThrottlingException" => PortError::Throttled(detail),
            "InternalServerError"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "InternalError"
            | "TransactionConflictException" => PortError::Transient(detail),
            _ => PortError::Fatal(detail),
        },
        _ => PortError::Fatal(detail),
    }
}
