//! Organization members and their API keys (admins only), and `GET /v1/me`.

use axum::extract::State;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{issue, Member, Role};
use crate::error::{ApiError, Result};
use crate::extract::ApiJson;
use crate::extract::ApiPath;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/me", get(me))
        .route("/v1/members", get(list_members).post(create_member))
        .route("/v1/members/{member_id}/api-keys", post(create_key))
        .route("/v1/api-keys/{key_id}", delete(revoke_key))
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub member_id: Uuid,
    pub org_id: Uuid,
    pub org_name: String,
    pub role: Role,
}

/// Who am I?
#[utoipa::path(get, path = "/v1/me", tag = "members", security(("api_key" = [])),
    responses(
        (status = 200, body = Me)))]
pub async fn me(State(state): State<AppState>, member: Member) -> Result<Json<Me>> {
    let org_name: String = sqlx::query_scalar("SELECT name FROM organizations WHERE id = $1")
        .bind(member.org_id)
        .fetch_one(&state.pool)
        .await?;
    Ok(Json(Me {
        member_id: member.member_id,
        org_id: member.org_id,
        org_name,
        role: member.role,
    }))
}

/// A member of the caller's organization.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct MemberView {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Lists the organization's members (admin).
#[utoipa::path(get, path = "/v1/members", tag = "members", security(("api_key" = [])),
    responses(
        (status = 200, body = [MemberView]),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody)))]
pub async fn list_members(
    State(state): State<AppState>,
    member: Member,
) -> Result<Json<Vec<MemberView>>> {
    member.require(&[Role::Admin])?;
    let rows = sqlx::query_as("SELECT id, name, email, role, created_at FROM members WHERE org_id = $1 ORDER BY created_at, id")
        .bind(member.org_id)
        .fetch_all(&state.pool)
        .await?;
    Ok(Json(rows))
}

/// A new member.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    #[schema(
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub name: String,
    #[schema(pattern = "^[^\\u0000]*@[^\\u0000]*$")]
    pub email: String,
    pub role: Role,
}

/// A member with a freshly issued API key (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberWithKey {
    pub member_id: Uuid,
    pub org_id: Uuid,
    pub role: Role,
    pub api_key_id: Uuid,
    /// The API key. It is stored hashed and cannot be shown again.
    pub api_key: String,
}

/// Adds a member and issues their first API key (admin).
#[utoipa::path(post, path = "/v1/members", tag = "members", security(("api_key" = [])), request_body = NewMember,
    responses(
        (status = 201, body = MemberWithKey),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody),
        (status = 409, description = "`member_exists`: a member with this email exists.", body = crate::error::ErrorBody)))]
pub async fn create_member(
    State(state): State<AppState>,
    member: Member,
    ApiJson(new): ApiJson<NewMember>,
) -> Result<(axum::http::StatusCode, Json<MemberWithKey>)> {
    member.require(&[Role::Admin])?;
    let created =
        insert_member(&state.pool, member.org_id, &new.name, &new.email, new.role).await?;
    Ok((axum::http::StatusCode::CREATED, Json(created)))
}

/// Inserts a member and their first key in one transaction (`clarity_app::members`, which
/// `clarity org create` uses too).
async fn insert_member(
    pool: &sqlx::PgPool,
    org_id: Uuid,
    name: &str,
    email: &str,
    role: Role,
) -> Result<MemberWithKey> {
    let created = clarity_app::members::create(
        pool,
        clarity_app::members::NewMember {
            org_id,
            name,
            email,
            role: role.as_str(),
        },
    )
    .await?;
    Ok(MemberWithKey {
        member_id: created.member_id,
        org_id,
        role,
        api_key_id: created.api_key_id,
        api_key: created.api_key,
    })
}

/// A newly issued API key (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct NewKey {
    pub api_key_id: Uuid,
    pub api_key: String,
}

/// Issues another API key for a member (admin).
#[utoipa::path(post, path = "/v1/members/{member_id}/api-keys", tag = "members", security(("api_key" = [])),
    params(("member_id" = Uuid, Path)), responses(
        (status = 201, body = NewKey),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody)))]
pub async fn create_key(
    State(state): State<AppState>,
    member: Member,
    ApiPath(member_id): ApiPath<Uuid>,
) -> Result<(axum::http::StatusCode, Json<NewKey>)> {
    member.require(&[Role::Admin])?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM members WHERE id = $1 AND org_id = $2)")
            .bind(member_id)
            .bind(member.org_id)
            .fetch_one(&state.pool)
            .await?;
    if !exists {
        return Err(ApiError::not_found("member"));
    }
    let key = issue("clk", Uuid::now_v7());
    sqlx::query("INSERT INTO api_keys (id, member_id, secret_hash) VALUES ($1, $2, $3)")
        .bind(key.id)
        .bind(member_id)
        .bind(&key.secret_hash)
        .execute(&state.pool)
        .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(NewKey {
            api_key_id: key.id,
            api_key: key.token,
        }),
    ))
}

/// Revokes an API key of the organization (admin).
#[utoipa::path(delete, path = "/v1/api-keys/{key_id}", tag = "members", security(("api_key" = [])),
    params(("key_id" = Uuid, Path)), responses(
        (status = 204, description = "Revoked."),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    member: Member,
    ApiPath(key_id): ApiPath<Uuid>,
) -> Result<axum::http::StatusCode> {
    member.require(&[Role::Admin])?;
    let revoked = sqlx::query(
        "UPDATE api_keys k SET revoked_at = now() FROM members m
         WHERE k.id = $1 AND m.id = k.member_id AND m.org_id = $2 AND k.revoked_at IS NULL",
    )
    .bind(key_id)
    .bind(member.org_id)
    .execute(&state.pool)
    .await?
    .rows_affected();
    if revoked == 0 {
        return Err(ApiError::not_found("API key"));
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}

impl crate::extract::BodyText for NewMember {}
