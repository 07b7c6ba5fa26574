//! Face models and their calibrations (issue 15): an organization whose candidates' devices
//! compute face checks with a model Clarity does not ship registers the model's labelled genuine
//! and impostor scores; Clarity derives the threshold and its measured error rates, and the
//! integrity analysis interprets that model's checks from then on. A model without a calibration
//! is shown as uncalibrated on the report, never silently skipped.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::auth::{Member, Role};
use crate::error::{ApiError, Result};
use crate::extract::ApiJson;
use crate::state::AppState;
use clarity_integrity::face::{self, Calibration};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/face-models", get(list).post(register))
}

/// The most scores of each kind one registration may carry.
pub const MAX_SCORES: usize = 100_000;

/// A face model's labelled calibration scores, from the model itself.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFaceModel {
    /// As the face checks name it (`model_id` of a `face_check` event).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub model_id: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub model_version: String,
    /// Similarity scores (0..=1) of two images of the same person (at least 100).
    #[schema(min_items = 100, max_items = 100_000)]
    pub genuine: Vec<f64>,
    /// Similarity scores (0..=1) of images of two different people (at least 200).
    #[schema(min_items = 200, max_items = 100_000)]
    pub impostor: Vec<f64>,
}

impl crate::extract::BodyText for NewFaceModel {}

/// A calibration in use: registered by the organization or built into Clarity.
#[derive(Debug, Serialize, ToSchema)]
pub struct FaceModelView {
    #[serde(flatten)]
    pub calibration: Calibration,
    /// Who registered it and when (`null` for built-in models).
    pub registered_by: Option<uuid::Uuid>,
    pub registered_at: Option<chrono::DateTime<chrono::Utc>>,
    pub scores_sha256: Option<String>,
}

type Row = (
    String,
    String,
    f64,
    f64,
    f64,
    i32,
    i32,
    String,
    uuid::Uuid,
    chrono::DateTime<chrono::Utc>,
);

fn view(r: Row) -> FaceModelView {
    FaceModelView {
        calibration: Calibration {
            model_id: r.0,
            model_version: r.1,
            threshold: r.2,
            false_non_match_rate: r.3,
            false_match_rate: r.4,
            genuine_pairs: r.5 as usize,
            impostor_pairs: r.6 as usize,
            source: "registered".into(),
        },
        scores_sha256: Some(r.7),
        registered_by: Some(r.8),
        registered_at: Some(r.9),
    }
}

async fn load(pool: &sqlx::PgPool, org_id: uuid::Uuid) -> sqlx::Result<Vec<FaceModelView>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT model_id, model_version, threshold, false_non_match_rate, false_match_rate,
                genuine_pairs, impostor_pairs, scores_sha256, registered_by, registered_at
         FROM face_models WHERE org_id = $1 ORDER BY model_id, model_version",
    )
    .bind(org_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(view).collect())
}

/// Lists the face models whose checks the analysis interprets: the organization's registered
/// calibrations, then the built-in ones (staff).
#[utoipa::path(get, path = "/v1/face-models", tag = "integrity", security(("api_key" = [])),
    responses(
        (status = 200, body = [FaceModelView])))]
pub async fn list(
    State(state): State<AppState>,
    member: Member,
) -> Result<Json<Vec<FaceModelView>>> {
    let mut out = load(&state.pool, member.org_id).await?;
    out.extend(
        face::builtin_calibrations()
            .into_iter()
            .map(|c| FaceModelView {
                calibration: c,
                registered_by: None,
                registered_at: None,
                scores_sha256: None,
            }),
    );
    Ok(Json(out))
}

/// Registers a face model's calibration from labelled scores (admin). The threshold is derived so
/// that 1% of the genuine pairs fall below it; the answer gives the impostor pairs passing it.
#[utoipa::path(post, path = "/v1/face-models", tag = "integrity", security(("api_key" = [])), request_body = NewFaceModel,
    responses(
        (status = 201, body = FaceModelView),
        (status = 403, description = "`forbidden`: only admins register face models.", body = crate::error::ErrorBody),
        (status = 409, description = "`face_model_registered`: this model version is registered already (a recalibrated model is a new version); `face_model_built_in`: Clarity ships this model version's calibration.", body = crate::error::ErrorBody),
        (status = 422, description = "`calibration_refused`: too few scores (at least 100 genuine and 200 impostor), a score outside 0..=1, or a model that does not tell people apart (half the impostor pairs or more would pass); `too_many_scores`: more than 100,000 of a kind; `invalid_model`: an empty or over-long model id or version.", body = crate::error::ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    member: Member,
    ApiJson(new): ApiJson<NewFaceModel>,
) -> Result<(StatusCode, Json<FaceModelView>)> {
    member.require(&[Role::Admin])?;
    let blank = |s: &str| s.trim().is_empty();
    if blank(&new.model_id)
        || blank(&new.model_version)
        || new.model_id.chars().count() > 200
        || new.model_version.chars().count() > 100
    {
        return Err(ApiError::invalid(
            "invalid_model",
            "`model_id` (1 to 200 characters) and `model_version` (1 to 100) must not be blank",
        ));
    }
    if new.genuine.len() > MAX_SCORES || new.impostor.len() > MAX_SCORES {
        return Err(ApiError::invalid(
            "too_many_scores",
            format!("at most {MAX_SCORES} genuine and {MAX_SCORES} impostor scores"),
        ));
    }
    if face::builtin_calibrations()
        .iter()
        .any(|c| c.model_id == new.model_id && c.model_version == new.model_version)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "face_model_built_in",
            "Clarity ships this model version's calibration",
        ));
    }
    let calibration = face::calibrate(
        &new.model_id,
        &new.model_version,
        &new.genuine,
        &new.impostor,
    )
    .map_err(|e| ApiError::invalid("calibration_refused", e.to_string()))?;
    let digest = hex::encode(Sha256::digest(
        serde_json::to_vec(&(&new.genuine, &new.impostor)).map_err(ApiError::internal)?,
    ));
    let at = state.now();
    let inserted = sqlx::query(
        "INSERT INTO face_models (org_id, model_id, model_version, threshold, false_non_match_rate,
             false_match_rate, genuine_pairs, impostor_pairs, scores_sha256, registered_by,
             registered_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT DO NOTHING",
    )
    .bind(member.org_id)
    .bind(&calibration.model_id)
    .bind(&calibration.model_version)
    .bind(calibration.threshold)
    .bind(calibration.false_non_match_rate)
    .bind(calibration.false_match_rate)
    .bind(calibration.genuine_pairs as i32)
    .bind(calibration.impostor_pairs as i32)
    .bind(&digest)
    .bind(member.member_id)
    .bind(at)
    .execute(&state.pool)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "face_model_registered",
            "this model version is registered already; register a recalibrated model as a new version",
        ));
    }
    Ok((
        StatusCode::CREATED,
        Json(FaceModelView {
            calibration,
            registered_by: Some(member.member_id),
            registered_at: Some(at),
            scores_sha256: Some(digest),
        }),
    ))
}
