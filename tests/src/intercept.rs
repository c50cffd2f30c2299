//! Stores whose SDK clients run a test interceptor, and the interceptor most
//! tests want: one that counts DynamoDB and KMS calls by operation.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use artifacts::{Config, Store};
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents, SharedInterceptor};

use crate::{BoxError, TestEnv, target_operation};

/// Which of a store's SDK clients run the interceptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clients {
    DynamoDb,
    Kms,
    Both,
}

/// A store like `env.store` whose DynamoDB and/or KMS clients (as `on`
/// says) run `interceptor`; the others are plain clients of the emulator.
pub fn intercepted_store(
    env: &TestEnv,
    on: Clients,
    interceptor: impl Intercept + 'static,
) -> Store {
    intercepted_store_with(env, env.store.config.clone(), on, interceptor)
}

/// [`intercepted_store`] with its own `config`.
pub fn intercepted_store_with(
    env: &TestEnv,
    config: Config,
    on: Clients,
    interceptor: impl Intercept + 'static,
) -> Store {
    let interceptor = SharedInterceptor::new(interceptor);
    let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(&env.sdk);
    if on != Clients::Kms {
        dynamodb.push_interceptor(interceptor.clone());
    }
    let mut kms = aws_sdk_kms::config::Builder::from(&env.sdk);
    if on != Clients::DynamoDb {
        kms.push_interceptor(interceptor);
    }
    Store::with_clients(
        config,
        aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
        env.s3(),
        aws_sdk_kms::Client::from_conf(kms.build()),
    )
}

/// Counts the calls of the clients it is put on by operation, the tail of
/// `x-amz-target` ([`target_operation`]): DynamoDB and KMS calls.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Mutex<BTreeMap<String, usize>>>);

impl CallCounter {
    /// A store like `env.store` whose `on` clients this counter counts.
    pub fn store(&self, env: &TestEnv, on: Clients) -> Store {
        intercepted_store(env, on, self.clone())
    }

    /// The calls counted so far, by operation, leaving none counted.
    pub fn take(&self) -> BTreeMap<String, usize> {
        std::mem::take(&mut *self.lock())
    }

    /// The calls counted so far, by operation.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.lock().clone()
    }

    /// The calls of `operation` counted so far.
    pub fn count(&self, operation: &str) -> usize {
        self.lock().get(operation).copied().unwrap_or(0)
    }

    /// Every call counted so far.
    pub fn total(&self) -> usize {
        self.lock().values().sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, usize>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = target_operation(context).to_owned();
        *self.lock().entry(operation).or_default() += 1;
        Ok(())
    }
}

/// Fails, before it is sent, every DynamoDB call of `operation` (as
/// [`target_operation`] names it) whose body contains `needle`, until
/// [`DynamoDbFault::stop`]; counts the calls it failed.
#[derive(Debug, Clone)]
pub struct DynamoDbFault {
    operation: &'static str,
    needle: &'static str,
    on: Arc<AtomicBool>,
    injected: Arc<AtomicUsize>,
}

impl DynamoDbFault {
    /// A fault already under way.
    pub fn new(operation: &'static str, needle: &'static str) -> Self {
        DynamoDbFault {
            operation,
            needle,
            on: Arc::new(AtomicBool::new(true)),
            injected: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A store like `env.store` whose DynamoDB client has this fault.
    pub fn store(&self, env: &TestEnv) -> Store {
        intercepted_store(env, Clients::DynamoDb, self.clone())
    }

    /// DynamoDB answers again.
    pub fn stop(&self) {
        self.on.store(false, Ordering::SeqCst);
    }

    /// The calls failed so far.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }
}

impl Intercept for DynamoDbFault {
    fn name(&self) -> &'static str {
        "DynamoDbFault"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = context.request().body().bytes().unwrap_or_default();
        if self.on.load(Ordering::SeqCst)
            && target_operation(context) == self.operation
            && String::from_utf8_lossy(body).contains(self.needle)
        {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err("injected fault: DynamoDB unreachable".into());
        }
        Ok(())
    }
}
