//! Organization members: created with their first API key in one transaction, by the HTTP API
//! (`POST /v1/members`) and by the command line (`clarity org create`) alike.

use uuid::Uuid;

use crate::credentials::issue;

/// A member to create.
#[derive(Debug, Clone)]
pub struct NewMember<'a> {
    pub org_id: Uuid,
    pub name: &'a str,
    pub email: &'a str,
    /// The role's stored name (`admin`, `hiring_manager`, …).
    pub role: &'a str,
}

/// The created member and their first API key (shown once; stored hashed).
#[derive(Debug, Clone)]
pub struct CreatedMember {
    pub member_id: Uuid,
    pub api_key_id: Uuid,
    pub api_key: String,
}

/// Why no member was created.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// The name is blank or the email has no `@`.
    #[error("a member needs a name and an email")]
    Invalid,
    /// The email is taken.
    #[error("a member with this email exists")]
    Exists,
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// Inserts a member and their first key in one transaction.
pub async fn create(pool: &sqlx::PgPool, new: NewMember<'_>) -> Result<CreatedMember, MemberError> {
    if new.name.trim().is_empty() || !new.email.contains('@') {
        return Err(MemberError::Invalid);
    }
    let member_id = Uuid::now_v7();
    let key = issue("clk", Uuid::now_v7());
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO members (id, org_id, name, email, role) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(member_id)
    .bind(new.org_id)
    .bind(new.name.trim())
    .bind(new.email.trim().to_lowercase())
    .bind(new.role)
    .execute(&mut *tx)
    .await;
    if let Err(sqlx::Error::Database(e)) = &inserted {
        if e.constraint() == Some("members_email_unique") {
            return Err(MemberError::Exists);
        }
    }
    inserted?;
    sqlx::query(
        "INSERT INTO api_keys (id, member_id, secret_hash, label) VALUES ($1, $2, $3, 'initial')",
    )
    .bind(key.id)
    .bind(member_id)
    .bind(&key.secret_hash)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(CreatedMember {
        member_id,
        api_key_id: key.id,
        api_key: key.token,
    })
}

/// A bootstrapped organization and its first admin's API key.
#[derive(Debug, Clone)]
pub struct NewOrganization {
    pub org_id: Uuid,
    pub admin_member_id: Uuid,
    pub admin_api_key: String,
}

/// Creates an organization with one admin member and returns the admin's API key.
pub async fn create_organization(
    pool: &sqlx::PgPool,
    name: &str,
    admin_name: &str,
    admin_email: &str,
) -> Result<NewOrganization, MemberError> {
    let org_id = Uuid::now_v7();
    sqlx::query("INSERT INTO organizations (id, name) VALUES ($1, $2)")
        .bind(org_id)
        .bind(name)
        .execute(pool)
        .await?;
    let admin = create(
        pool,
        NewMember {
            org_id,
            name: admin_name,
            email: admin_email,
            role: "admin",
        },
    )
    .await?;
    Ok(NewOrganization {
        org_id,
        admin_member_id: admin.member_id,
        admin_api_key: admin.api_key,
    })
}
