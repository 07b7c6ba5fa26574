//! Who is calling: organization members by API key, candidates by session token.
//!
//! Both credentials are `<prefix>_<id>_<secret>` strings; only SHA-256 of the secret is stored,
//! and it is compared in constant time. Every staff endpoint states the roles it admits, and
//! every query filters by the caller's organization: another organization's resources answer 404.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
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

/// An authenticated candidate, acting on exactly one session.
#[derive(Debug, Clone)]
pub struct CandidateToken {
    pub session_id: Uuid,
    pub org_id: Uuid,
}

/// A freshly issued credential: the full secret (shown once) and what to store.
pub struct Issued {
    pub id: Uuid,
    pub token: String,
    pub secret_hash: Vec<u8>,
}

/// Issues `<prefix>_<id>_<secret>` with a 256-bit random secret.
pub fn issue(prefix: &str, id: Uuid) -> Issued {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let secret = hex::encode(secret);
    Issued {
        id,
        token: format!("{prefix}_{}_{secret}", id.simple()),
        secret_hash: hash(&secret),
    }
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
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
        Member::from_api_key(state, bearer(parts)?).await
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
        let row: Option<(Uuid, Vec<u8>)> =
            sqlx::query_as("SELECT org_id, secret_hash FROM session_tokens WHERE session_id = $1")
                .bind(session_id)
                .fetch_optional(&state.pool)
                .await?;
        let (org_id, stored) = row.ok_or_else(invalid)?;
        if !constant_time_eq(&stored, &hash(secret)) {
            return Err(invalid());
        }
        Ok(CandidateToken { session_id, org_id })
    }
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
}
