//! Rate limits, request timeouts and the cap on concurrent replay streams.
//!
//! Token buckets, one per caller: each API key and each candidate token (after it was verified,
//! so nobody can spend someone else's budget by naming their key), and each client address for
//! the unauthenticated routes and for failed authentications. A bucket holds `burst` requests
//! and refills at `per_second`; a request finding it empty answers 429 `rate_limited` with
//! `Retry-After`. Every response of a limited caller carries the IETF `RateLimit-Policy` and
//! `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers): the policy as quota `q` per
//! window `w` seconds (the burst and the time to refill it), and what remains `r` and the
//! seconds `t` until the bucket is full again.
//!
//! The buckets live in each `serve` process: behind a load balancer over N processes a caller
//! gets up to N times the rate. That bounds what one caller can cost a process, which is the
//! point; an organization-wide quota would need a shared store.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use crate::config::Config;
use crate::error::ApiError;
use crate::state::AppState;

/// Whose budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Caller {
    /// An API key (also when it redeems a stream ticket).
    Staff(Uuid),
    /// A candidate's session token.
    Candidate(Uuid),
    /// A client address, on the unauthenticated routes.
    Address(IpAddr),
    /// A client address whose credentials were refused.
    Failures(IpAddr),
}

impl Caller {
    fn policy(self) -> &'static str {
        match self {
            Caller::Staff(_) => "api_key",
            Caller::Candidate(_) => "session_token",
            Caller::Address(_) => "address",
            Caller::Failures(_) => "failed_authentication",
        }
    }
}

/// A bucket's rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    fn enabled(self) -> bool {
        self.per_second > 0.0 && self.burst > 0
    }

    /// Seconds for an empty bucket to fill up.
    fn window(self) -> u64 {
        (f64::from(self.burst) / self.per_second).ceil() as u64
    }
}

/// What one check found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub caller: Caller,
    pub rate: Rate,
    pub allowed: bool,
    /// Requests left in the bucket after this one.
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub full_in: u64,
    /// Seconds until one request is allowed again (0 when allowed).
    pub retry_after: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Every bucket of a process.
pub struct Limiter {
    staff: Rate,
    candidate: Rate,
    address: Rate,
    failures: Rate,
    buckets: Mutex<HashMap<Caller, Bucket>>,
}

/// Buckets kept before idle (full) ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

impl Limiter {
    /// The limits of `config`.
    pub fn new(config: &Config) -> Self {
        Self {
            staff: Rate {
                per_second: config.rate_staff_per_second,
                burst: config.rate_staff_burst,
            },
            candidate: Rate {
                per_second: config.rate_candidate_per_second,
                burst: config.rate_candidate_burst,
            },
            address: Rate {
                per_second: config.rate_address_per_second,
                burst: config.rate_address_burst,
            },
            failures: Rate {
                per_second: config.rate_failures_per_second,
                burst: config.rate_failures_burst,
            },
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn rate(&self, caller: Caller) -> Rate {
        match caller {
            Caller::Staff(_) => self.staff,
            Caller::Candidate(_) => self.candidate,
            Caller::Address(_) => self.address,
            Caller::Failures(_) => self.failures,
        }
    }

    /// Takes `cost` (0 to only look) from `caller`'s bucket at `now`; `None` when its limit is
    /// off.
    pub fn take(&self, caller: Caller, cost: f64, now: Instant) -> Option<Quota> {
        let rate = self.rate(caller);
        if !rate.enabled() {
            return None;
        }
        let burst = f64::from(rate.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|caller, b| {
                let rate = self.rate(*caller);
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate.per_second
                    < f64::from(rate.burst)
            });
        }
        let bucket = buckets.entry(caller).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate.per_second).min(burst);
        bucket.at = now;
        let allowed = bucket.tokens >= cost.max(1.0) || (cost == 0.0 && bucket.tokens >= 1.0);
        if allowed {
            bucket.tokens -= cost;
        }
        let missing = (1.0 - bucket.tokens).max(0.0);
        Some(Quota {
            caller,
            rate,
            allowed,
            remaining: bucket.tokens.floor().max(0.0) as u32,
            full_in: ((burst - bucket.tokens) / rate.per_second).ceil() as u64,
            retry_after: if allowed {
                0
            } else {
                (missing / rate.per_second).ceil().max(1.0) as u64
            },
        })
    }
}

tokio::task_local! {
    /// The quota the current request was checked against, for the response headers.
    static QUOTA: RefCell<Option<Quota>>;
}

fn remember(quota: Quota) {
    // Outside a request (a unit test, a background task) there is nothing to remember it for.
    let _ = QUOTA.try_with(|q| *q.borrow_mut() = Some(quota));
}

fn refused(quota: &Quota) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "too many requests for this {}: at most {} in a burst and {}/s sustained; retry in {} s",
            quota.caller.policy().replace('_', " "),
            quota.rate.burst,
            quota.rate.per_second,
            quota.retry_after
        ),
    )
    .with_details(serde_json::json!({ "retry_after_seconds": quota.retry_after }))
}

impl AppState {
    /// Spends one request of an authenticated caller's budget: 429 `rate_limited` when it is
    /// exhausted. Called by the extractors once the credential is verified.
    pub fn spend(&self, caller: Caller) -> Result<(), ApiError> {
        match self.limiter.take(caller, 1.0, Instant::now()) {
            Some(quota) => {
                remember(quota);
                if quota.allowed {
                    Ok(())
                } else {
                    Err(refused(&quota))
                }
            }
            None => Ok(()),
        }
    }
}

/// The middleware: per-address limits for unauthenticated requests and for failed
/// authentications, the rate-limit headers, and the request timeout.
pub async fn middleware(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let address = state
        .config
        .trusted_proxies
        .client(peer.ip(), request.headers());
    request
        .extensions_mut()
        .insert(crate::client_address::ClientAddress(address));
    let now = Instant::now();
    // An address whose credentials keep being refused is slowed down whatever it sends next.
    if let Some(failures) = state.limiter.take(Caller::Failures(address), 0.0, now) {
        if !failures.allowed {
            return with_headers(refused(&failures).into_response(), Some(failures));
        }
    }
    let authenticated = request
        .headers()
        .contains_key(axum::http::header::AUTHORIZATION)
        || request.uri().query().is_some_and(|q| q.contains("ticket="));
    let mut quota = None;
    if !authenticated {
        if let Some(q) = state.limiter.take(Caller::Address(address), 1.0, now) {
            if !q.allowed {
                return with_headers(refused(&q).into_response(), Some(q));
            }
            quota = Some(q);
        }
    }
    let timeout = Duration::from_secs(state.config.request_timeout_seconds);
    let (response, checked) = QUOTA
        .scope(RefCell::new(quota), async move {
            let response = match tokio::time::timeout(timeout, next.run(request)).await {
                Ok(response) => response,
                Err(_) => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "timeout",
                    format!(
                        "the request took longer than {} s and was abandoned; retry later",
                        timeout.as_secs()
                    ),
                )
                .into_response(),
            };
            (response, QUOTA.with(|q| *q.borrow()))
        })
        .await;
    if response.status() == StatusCode::UNAUTHORIZED {
        state
            .limiter
            .take(Caller::Failures(address), 1.0, Instant::now());
    }
    with_headers(response, checked)
}

fn with_headers(mut response: Response, quota: Option<Quota>) -> Response {
    let Some(quota) = quota else {
        return response;
    };
    let headers = response.headers_mut();
    let policy = quota.caller.policy();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "\"{policy}\";q={};w={}",
        quota.rate.burst,
        quota.rate.window()
    )) {
        headers.insert("ratelimit-policy", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "\"{policy}\";r={};t={}",
        quota.remaining, quota.full_in
    )) {
        headers.insert("ratelimit", v);
    }
    if !quota.allowed {
        headers.insert(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from(quota.retry_after),
        );
    }
    response
}

/// Open replay streams per member: a stream holds a permit until it ends.
#[derive(Default)]
pub struct Streams {
    open: Mutex<HashMap<Uuid, usize>>,
}

/// One open stream; dropping it (the stream ended or the client went away) frees the slot.
pub struct StreamPermit {
    streams: Arc<Streams>,
    member: Uuid,
}

impl Streams {
    /// A permit for one more stream of `member`, or 429 `too_many_streams`.
    pub fn open(self: &Arc<Self>, member: Uuid, max: usize) -> Result<StreamPermit, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(member).or_insert(0);
        if *count >= max {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "at most {max} replay streams may be open at once per member; close one first"
                ),
            ));
        }
        *count += 1;
        Ok(StreamPermit {
            streams: self.clone(),
            member,
        })
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.member) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.member);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: u32) -> Limiter {
        let rate = Rate { per_second, burst };
        Limiter {
            staff: rate,
            candidate: rate,
            address: rate,
            failures: rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let limiter = limiter(2.0, 3);
        let caller = Caller::Staff(Uuid::nil());
        let t0 = Instant::now();
        let remaining: Vec<u32> = (0..3)
            .map(|_| limiter.take(caller, 1.0, t0).unwrap().remaining)
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = limiter.take(caller, 1.0, t0).unwrap();
        assert!(!refused.allowed);
        assert_eq!((refused.retry_after, refused.full_in), (1, 2));
        // Half a second later one request (2/s) is back.
        let later = t0 + Duration::from_millis(500);
        assert!(limiter.take(caller, 1.0, later).unwrap().allowed);
        assert!(!limiter.take(caller, 1.0, later).unwrap().allowed);
        // Other callers have their own buckets.
        assert!(
            limiter
                .take(Caller::Staff(Uuid::max()), 1.0, t0)
                .unwrap()
                .allowed
        );
    }

    #[test]
    fn looking_costs_nothing_and_a_zero_rate_turns_the_limit_off() {
        let limiter = limiter(1.0, 1);
        let caller = Caller::Failures(IpAddr::from([10, 0, 0, 1]));
        let t0 = Instant::now();
        assert!(limiter.take(caller, 0.0, t0).unwrap().allowed);
        assert!(limiter.take(caller, 0.0, t0).unwrap().allowed);
        assert!(limiter.take(caller, 1.0, t0).unwrap().allowed);
        assert!(!limiter.take(caller, 0.0, t0).unwrap().allowed);
        assert!(self::limiter(0.0, 10).take(caller, 1.0, t0).is_none());
    }

    #[test]
    fn idle_buckets_are_pruned_when_there_are_many() {
        let limiter = limiter(1000.0, 1);
        let t0 = Instant::now();
        for i in 0..=PRUNE_ABOVE as u128 {
            limiter.take(Caller::Staff(Uuid::from_u128(i)), 1.0, t0);
        }
        limiter.take(Caller::Staff(Uuid::max()), 1.0, t0 + Duration::from_secs(1));
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_stream_permit_is_returned_when_dropped() {
        let streams = Arc::new(Streams::default());
        let member = Uuid::nil();
        let first = streams.open(member, 2).unwrap();
        let _second = streams.open(member, 2).unwrap();
        assert_eq!(
            streams.open(member, 2).err().unwrap().code,
            "too_many_streams"
        );
        drop(first);
        assert!(streams.open(member, 2).is_ok());
    }
}
