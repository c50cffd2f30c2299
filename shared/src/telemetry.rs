//! Logging: `tracing` through the Lambda runtime's subscriber, which writes
//! JSON when `AWS_LAMBDA_LOG_FORMAT=JSON` (set by the template) and honours
//! `AWS_LAMBDA_LOG_LEVEL`. Content, keys and tokens are never logged.

pub fn init() {
    lambda_http::tracing::init_default_subscriber();
}
