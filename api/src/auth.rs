//! Who is calling: organization members by API key, candidates by session token.
//!
//! Both credentials are `<prefix>_<id>_<secret>` strings; only SHA-256 of the secret is stored,
//! and it is compared in constant time. Every staff endpoint states the roles it admits, and
//! every query filters by the caller's organization: another organization's resources answer 404.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use clarity_app::credentials::hash;
pub use clarity_app::credentials::{issue, Issued};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// Roles of organization members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Role {
    Admin,
    HiringManager,
    Reviewer,
    Auditor,
    Analyst,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::HiringManager,
        Role::Reviewer,
        Role::Auditor,
        Role::Analyst,
    ];

    /// The role's stored (and wire) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::HiringManager => "hiring_manager",
            Role::Reviewer => "reviewer",
            Role::Auditor => "auditor",
            Role::Analyst => "analyst",
        }
    }
}

/// An authenticated organization member.
#[derive(Debug, Clone)]
pub struct Member {
    pub member_id: Uuid,
    pub org_id: Uuid,
    pub role: Role,
    /// The API key this request was authenticated with.
    pub key_id: Uuid,
}

impl Member {
    /// Refuses with 403 unless the member has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this action needs one of the roles {roles:?}"
            )))
        }
    }
}

/// An authenticated candidate, acting on exactly one session, with what the event store says
/// about that session when the token was checked.
#[derive(Debug, Clone)]
pub struct CandidateToken {
    pub session_id: Uuid,
    pub org_id: Uuid,
    /// When the clock started (`SessionStarted`), if it did.
    pub started_at: Option<DateTime<Utc>>,
    /// The session's deadline, once started.
    pub deadline: Option<DateTime<Utc>>,
    /// When the session ended (`SessionSubmitted` or `SessionExpired`), if it did.
    pub ended_at: Option<DateTime<Utc>>,
    /// The optional scopes consented to: telemetry of other scopes is refused.
    pub consent: clarity_domain::session::ConsentScopes,
    /// When consent to keystroke dynamics and to face continuity was withdrawn, if it was:
    /// telemetry of that scope dated after it is refused (what was captured before may still
    /// arrive from the page's queue).
    pub withdrawn_at: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    /// The session's telemetry gate as it was when the token was checked (`None` before the
    /// first batch): read with the token so that ingestion needs no query of its own for it.
    pub gate: Option<(i64, crate::routes::telemetry::gate::Gate)>,
}

impl CandidateToken {
    /// Why an event may not be accepted under the candidate's consent, if it may not: key
    /// timings need consent to keystroke dynamics, face checks consent to face continuity, and
    /// neither is taken when dated after that consent was withdrawn.
    pub fn consent_refuses(
        &self,
        data: &clarity_domain::telemetry::TelemetryData,
        ts: DateTime<Utc>,
    ) -> Option<&'static str> {
        use clarity_domain::telemetry::TelemetryData as T;
        let (consented, withdrawn_at, scope) = match data {
            T::Keystroke { .. } => (
                self.consent.keystroke_dynamics,
                self.withdrawn_at.0,
                "keystroke_dynamics",
            ),
            T::FaceCheck { .. } => (
                self.consent.face_continuity,
                self.withdrawn_at.1,
                "face_continuity",
            ),
            _ => return None,
        };
        (!consented || withdrawn_at.is_some_and(|w| ts > w)).then_some(scope)
    }

    /// Whether telemetry may be accepted at `now`: started, not ended, deadline not passed
    /// (the same rule as `CandidateSession::accepts_telemetry`).
    pub fn accepts_telemetry(&self, now: DateTime<Utc>) -> bool {
        self.started_at.is_some()
            && self.ended_at.is_none()
            && self.deadline.is_some_and(|d| now <= d)
    }
}

/// Until when a session token works, given what happened to its session: before the start,
/// until the invitation lapses; while the session runs, until the deadline plus the grace;
/// once it ended, until the end plus the grace. Revocation ends it at once (checked apart).
pub fn candidate_token_expiry(
    invite_expires_at: DateTime<Utc>,
    deadline: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    grace: chrono::Duration,
) -> DateTime<Utc> {
    match (ended_at, deadline) {
        (Some(ended), Some(deadline)) => (ended + grace).min(deadline + grace),
        (Some(ended), None) => ended + grace,
        (None, Some(deadline)) => deadline + grace,
        (None, None) => invite_expires_at,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Splits `<prefix>_<id>_<secret>`.
fn parse<'a>(token: &'a str, prefix: &str) -> Option<(Uuid, &'a str)> {
    let rest = token.strip_prefix(prefix)?.strip_prefix('_')?;
    let (id, secret) = rest.split_once('_')?;
    Some((Uuid::try_parse(id).ok()?, secret))
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("missing Authorization header"))?;
    header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthenticated("Authorization must be `Bearer <token>`"))
}

impl Member {
    /// Resolves a member from a raw API key.
    pub async fn from_api_key(state: &AppState, token: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::unauthenticated("invalid API key");
        let (key_id, secret) = parse(token, "clk").ok_or_else(invalid)?;
        let row: Option<(Uuid, Uuid, Role, Vec<u8>)> = sqlx::query_as(
            "SELECT m.id, m.org_id, m.role, k.secret_hash FROM api_keys k JOIN members m ON m.id = k.member_id
             WHERE k.id = $1 AND k.revoked_at IS NULL",
        )
        .bind(key_id)
        .fetch_optional(&state.pool)
        .await?;
        let (member_id, org_id, role, stored) = row.ok_or_else(invalid)?;
        if !constant_time_eq(&stored, &hash(secret)) {
            return Err(invalid());
        }
        Ok(Member {
            member_id,
            org_id,
            role,
            key_id,
        })
    }

    /// Redeems a replay stream ticket for `session_id` (single use, unexpired, issued for this
    /// session, its key not revoked since): the member who asked for it.
    pub async fn from_stream_ticket(
        state: &AppState,
        ticket: &str,
        session_id: Uuid,
    ) -> Result<Self, ApiError> {
        let invalid = || {
            ApiError::unauthenticated(
                "invalid, expired or already used stream ticket; ask for a new one",
            )
        };
        let secret = ticket.strip_prefix("rst_").ok_or_else(invalid)?;
        let row: Option<(Uuid, Uuid, Role, Uuid)> = sqlx::query_as(
            "UPDATE stream_tickets t SET used_at = now()
             FROM api_keys k JOIN members m ON m.id = k.member_id
             WHERE t.ticket_hash = $1 AND t.session_id = $2 AND t.used_at IS NULL AND t.expires_at > now()
               AND k.id = t.api_key_id AND k.revoked_at IS NULL
             RETURNING m.id, m.org_id, m.role, k.id",
        )
        .bind(hash(secret))
        .bind(session_id)
        .fetch_optional(&state.pool)
        .await?;
        let (member_id, org_id, role, key_id) = row.ok_or_else(invalid)?;
        Ok(Member {
            member_id,
            org_id,
            role,
            key_id,
        })
    }
}

/// A freshly issued replay stream ticket: `rst_<secret>` (shown once) and its hash.
pub fn issue_stream_ticket() -> (String, Vec<u8>) {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let secret = hex::encode(secret);
    let hashed = hash(&secret);
    (format!("rst_{secret}"), hashed)
}

impl FromRequestParts<AppState> for Member {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let member = Member::from_api_key(state, bearer(parts)?).await?;
        state.spend(crate::limits::Caller::Staff(member.key_id))?;
        Ok(member)
    }
}

impl FromRequestParts<AppState> for CandidateToken {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let invalid = || ApiError::unauthenticated("invalid session token");
        let (session_id, secret) = parse(token, "cst").ok_or_else(invalid)?;
        // The token row, and the session's life from the event store itself (not a read model,
        // which may lag): one index range scan over the session's lifecycle events. Revocation
        // is an event, so it takes effect the moment it is recorded.
        let row: Option<SessionLife> = sqlx::query_as(SESSION_LIFE)
            .bind(session_id)
            .fetch_optional(&state.pool)
            .await?;
        let life = row.ok_or_else(invalid)?;
        if !constant_time_eq(&life.secret_hash, &hash(secret)) {
            return Err(invalid());
        }
        // Only the holder of the secret learns why it no longer works.
        if life.revoked {
            return Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "session_token_revoked",
                "this session link was revoked by the organization; contact them for a new invitation",
            ));
        }
        let Some(invite_expires_at) = life.invite_expires_at else {
            // A token whose invitation was never recorded (the invite failed half-way).
            return Err(invalid());
        };
        let grace = chrono::Duration::seconds(state.config.candidate_token_grace_seconds);
        let expires_at =
            candidate_token_expiry(invite_expires_at, life.deadline, life.ended_at, grace);
        if state.now() > expires_at {
            return Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "session_token_expired",
                format!("this session link expired at {expires_at}"),
            )
            .with_details(serde_json::json!({ "expired_at": expires_at })));
        }
        state.spend(crate::limits::Caller::Candidate(session_id))?;
        Ok(CandidateToken {
            session_id,
            org_id: life.org_id,
            started_at: life.started_at,
            deadline: life.deadline,
            ended_at: life.ended_at,
            consent: clarity_domain::session::ConsentScopes {
                keystroke_dynamics: life.keystroke_consented,
                face_continuity: life.face_consented,
            },
            withdrawn_at: (life.keystroke_withdrawn_at, life.face_withdrawn_at),
            gate: life.gate_last_seq.map(|last_seq| {
                (
                    last_seq,
                    crate::routes::telemetry::gate::Gate::from_row(
                        last_seq,
                        life.gate_events.unwrap_or_default(),
                        life.gate_bytes.unwrap_or_default(),
                        life.gate_files.map(|f| f.0),
                    ),
                )
            }),
        })
    }
}

/// A session token's row and its session's life, read from the event store (`payload` is the
/// externally tagged event; `SessionStarted` v1 named its start `started_at`).
const SESSION_LIFE: &str = "
SELECT t.org_id, t.secret_hash, life.*,
       c.last_seq AS gate_last_seq, c.events AS gate_events, c.bytes AS gate_bytes, c.files AS gate_files
FROM session_tokens t
CROSS JOIN LATERAL (
    SELECT COALESCE(bool_or(e.event_type = 'CandidateAccessRevoked'), false) AS revoked,
           max((e.payload -> 'CandidateInvited' ->> 'invite_expires_at')::timestamptz) AS invite_expires_at,
           max(COALESCE(e.payload -> 'SessionStarted' ->> 'at',
                        e.payload -> 'SessionStarted' ->> 'started_at')::timestamptz) AS started_at,
           -- Extra time granted during the session moves the deadline (only ever later).
           max(COALESCE(e.payload -> 'ExtraTimeGranted' ->> 'deadline',
                        e.payload -> 'SessionStarted' ->> 'deadline')::timestamptz) AS deadline,
           COALESCE(bool_or((e.payload -> 'ConsentRecorded' -> 'scopes' ->> 'keystroke_dynamics')::boolean), false)
             AS keystroke_consented,
           min((e.payload -> 'ConsentWithdrawn' ->> 'at')::timestamptz)
             FILTER (WHERE (e.payload -> 'ConsentWithdrawn' -> 'scopes' ->> 'keystroke_dynamics')::boolean)
             AS keystroke_withdrawn_at,
           COALESCE(bool_or((e.payload -> 'ConsentRecorded' -> 'scopes' ->> 'face_continuity')::boolean), false)
             AS face_consented,
           min((e.payload -> 'ConsentWithdrawn' ->> 'at')::timestamptz)
             FILTER (WHERE (e.payload -> 'ConsentWithdrawn' -> 'scopes' ->> 'face_continuity')::boolean)
             AS face_withdrawn_at,
           min(COALESCE(e.payload -> 'SessionSubmitted' ->> 'at',
                        e.payload -> 'SessionExpired' ->> 'at')::timestamptz) AS ended_at
    FROM events e
    WHERE e.aggregate_type = 'CandidateSession' AND e.aggregate_id = t.session_id::text
      AND e.event_type IN ('CandidateInvited', 'SessionStarted', 'SessionSubmitted',
                           'SessionExpired', 'CandidateAccessRevoked', 'ConsentRecorded',
                           'ConsentWithdrawn', 'ExtraTimeGranted')
) life
LEFT JOIN telemetry_cursors c ON c.session_id = t.session_id
WHERE t.session_id = $1";

#[derive(sqlx::FromRow)]
struct SessionLife {
    org_id: Uuid,
    secret_hash: Vec<u8>,
    revoked: bool,
    invite_expires_at: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    deadline: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    keystroke_consented: bool,
    keystroke_withdrawn_at: Option<DateTime<Utc>>,
    face_consented: bool,
    face_withdrawn_at: Option<DateTime<Utc>>,
    gate_last_seq: Option<i64>,
    gate_events: Option<i64>,
    gate_bytes: Option<i64>,
    gate_files: Option<sqlx::types::Json<std::collections::BTreeMap<String, i64>>>,
}

impl CandidateToken {
    /// The token only opens its own session; any other id answers 404.
    pub fn for_session(&self, session_id: Uuid) -> Result<(), ApiError> {
        if self.session_id == session_id {
            Ok(())
        } else {
            Err(ApiError::not_found("session"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_token_parses_back_and_matches_its_hash() {
        let id = Uuid::new_v4();
        let issued = issue("clk", id);
        let (parsed, secret) = parse(&issued.token, "clk").unwrap();
        assert_eq!(parsed, id);
        assert!(constant_time_eq(&hash(secret), &issued.secret_hash));
        assert!(!constant_time_eq(&hash("wrong"), &issued.secret_hash));
        assert!(parse(&issued.token, "cst").is_none());
    }

    #[test]
    fn a_roles_stored_name_is_its_wire_name() {
        for role in Role::ALL {
            assert_eq!(
                serde_json::to_value(role).unwrap(),
                serde_json::Value::from(role.as_str())
            );
        }
    }
}
