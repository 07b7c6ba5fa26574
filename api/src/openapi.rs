//! The OpenAPI document of the HTTP API, generated from the handlers and types, then completed
//! by modifiers with what holds for every operation ([`common_responses`]) and for every request
//! body ([`request_rules`]), so that no route has to repeat it and none can forget it.

pub mod common_responses;
pub mod request_rules;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use common_responses::CommonResponses;
use request_rules::RequestRules;

use crate::routes::{
    access, assessments, candidate, face_models, integrity, members, ops, replay, reports, reviews,
    runs, sessions, telemetry,
};

/// The API description served at `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "Clarity API", description = "Event-sourced technical-hiring assessments: assessments, candidate sessions, telemetry ingestion. Errors are `{\"error\": {\"code\", \"message\", \"details\"}}` with a stable `code`."),
    paths(
        ops::healthz, ops::readyz, ops::event_schema_index, ops::event_schema, ops::audit_public_key,
        members::me, members::list_members, members::create_member, members::create_key, members::revoke_key,
        assessments::list, assessments::show, assessments::show_version, assessments::create, assessments::revise,
        assessments::publish, assessments::retire,
        sessions::invite, sessions::list, sessions::show, sessions::events, sessions::revoke_access, sessions::grant_extra_time,
        candidate::workspace, candidate::notice, candidate::consent, candidate::withdraw, candidate::start, candidate::resume, candidate::submit, runs::request_run, runs::run_status, runs::grades,
        telemetry::ingest,
        replay::summary, replay::state_at, replay::events, replay::diff, replay::stream, replay::stream_ticket,
        integrity::show, integrity::matched, integrity::diff, integrity::rerun, integrity::settings, integrity::change_settings,
        face_models::list, face_models::register,
        reports::report, reports::board, reports::org_board, reports::bundle, reports::submission_zip,
        reviews::show, reviews::assign, reviews::score, reviews::complete, reviews::comment, reviews::resolve, reviews::decide,
        access::list,
    ),
    components(schemas(crate::error::ErrorBody, clarity_domain::telemetry::TelemetryEvent, crate::held_back::HeldBack)),
    modifiers(&SecurityAddon, &RequestRules, &CommonResponses),
    tags(
        (name = "members", description = "Organization members and API keys"),
        (name = "assessments", description = "The built-in library and the organization's own assessments"),
        (name = "sessions", description = "Candidate sessions (staff)"),
        (name = "candidate", description = "What the candidate does, with the session token"),
        (name = "replay", description = "Session replay for reviewers: seek, events, playback, diff, markers"),
        (name = "integrity", description = "Integrity analysis: explainable findings with evidence, follow-up questions, re-runs"),
        (name = "reviews", description = "Reviews and hiring decisions: reviewers, rubric scores (blind until your own review is complete), comments at replay positions, finding resolutions, decisions"),
        (name = "reports", description = "Candidate reports (content-hashed versions) and leaderboards"),
        (name = "access", description = "Access audit: who read a candidate's replay, event log, integrity analysis or review, and when (auditors, admins)"),
        (name = "ops", description = "Health, readiness, schemas"),
    )
)]
pub struct ApiDoc;

struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |desc: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(desc.to_string());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme("api_key", bearer("Member API key `clk_<id>_<secret>`"));
        components.add_security_scheme(
            "session_token",
            bearer("Candidate session token `cst_<session>_<secret>`"),
        );
        components.add_security_scheme(
            "stream_ticket",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "ticket",
                "Single-use replay stream ticket `rst_<secret>` from `POST /v1/sessions/{session_id}/replay/stream-tickets`, for clients that cannot send an `Authorization` header",
            ))),
        );
    }
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    use super::request_rules;

    #[test]
    fn every_request_body_states_the_edge_rules_of_its_type() {
        let mut doc = super::ApiDoc::openapi();
        let listed = request_rules::bodies();
        for name in request_rules::request_body_names(&doc) {
            assert!(
                listed.contains_key(&name),
                "{name} is a request body: list it in request_rules::bodies()"
            );
        }
        assert_eq!(request_rules::conflicts(&mut doc), Vec::<String>::new());
    }

    #[test]
    fn every_operation_documents_the_responses_any_operation_can_give() {
        let doc = serde_json::to_value(super::ApiDoc::openapi()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = &operation["responses"];
                let has = |status: &str| responses.get(status).is_some();
                let at = format!("{method} {path}");
                assert!(has("429") && has("503"), "{at}: 429 and 503");
                let headers = &responses["429"]["headers"];
                for header in ["Retry-After", "RateLimit-Policy", "RateLimit"] {
                    assert!(headers.get(header).is_some(), "{at}: 429 {header}");
                }
                let secured = operation["security"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty());
                assert!(!secured || has("401"), "{at}: 401");
                if operation.get("requestBody").is_some() {
                    for status in ["400", "415", "422"] {
                        assert!(has(status), "{at}: {status}");
                    }
                }
            }
        }
    }
}
