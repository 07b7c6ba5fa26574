//! The steps the end-to-end tests are written in, shared so that each test reads as its
//! scenario: the whole [`Product`] in-process, an organization, a member, a started session, a
//! finished (typed and submitted) session, its integrity analysis, a completed review.
//!
//! Each step asserts that the API accepted it (a refused step fails the test with the reply), so
//! a test's own assertions are about what it tests, not about its arrangement.

use clarity_api::config::Config;
use serde_json::{json, Value};

use crate::{Client, Reply, Running, TestEnv, REST_API};

/// The file a scenario submits: `path` holding `content`.
pub type SubmittedFile<'a> = (&'a str, &'a str);

impl Client {
    /// Creates a member of the admin's organization; returns (member id, API key).
    pub async fn member(
        &self,
        admin_key: &str,
        name: &str,
        role: &str,
    ) -> anyhow::Result<(String, String)> {
        let r = self
            .post("/v1/members", admin_key, &json!({"name": name, "email": format!("{}@acme.test", name.to_lowercase().replace(' ', ".")), "role": role}))
            .await?;
        anyhow::ensure!(r.status == 201, "member not created: {r:?}");
        Ok((
            r.body["member_id"].as_str().unwrap().to_string(),
            r.body["api_key"].as_str().unwrap().to_string(),
        ))
    }

    /// Assigns `reviewer` to a finished REST API session, scores every rubric criterion at the
    /// level `pick` chooses, and completes the review (every call must be accepted).
    pub async fn complete_review(
        &self,
        admin_key: &str,
        session: &str,
        reviewer: (&str, &str),
        pick: fn(&clarity_domain::assessment::Criterion) -> u8,
    ) -> anyhow::Result<()> {
        let (reviewer_id, reviewer_key) = reviewer;
        let base = format!("/v1/sessions/{session}");
        let r = self
            .post(
                &format!("{base}/reviewers"),
                admin_key,
                &json!({"reviewers": [reviewer_id]}),
            )
            .await?;
        anyhow::ensure!(r.status == 202, "assigning failed: {r:?}");
        for c in &clarity_domain::catalogue::builtin()[0].spec.rubric.criteria {
            let r = self
                .post(&format!("{base}/scores"), reviewer_key, &json!({"criterion": c.key, "score": pick(c), "justification": format!("{}: checked", c.name)}))
                .await?;
            anyhow::ensure!(r.status == 202, "scoring failed: {r:?}");
        }
        let r = self
            .post(&format!("{base}/review/complete"), reviewer_key, &json!({}))
            .await?;
        anyhow::ensure!(r.status == 202, "completing failed: {r:?}");
        Ok(())
    }

    /// Invites a candidate to the REST API assessment; returns (session id, candidate token).
    pub async fn invite(&self, admin_key: &str, name: &str) -> anyhow::Result<(String, String)> {
        let r = self
            .post("/v1/sessions", admin_key, &json!({"assessment_id": REST_API, "candidate": {"name": name, "email": format!("{}@example.com", name.to_lowercase().replace(' ', "."))}}))
            .await?;
        anyhow::ensure!(r.status == 201, "invite failed: {r:?}");
        Ok((
            r.body["session_id"].as_str().unwrap().to_string(),
            r.body["candidate_token"].as_str().unwrap().to_string(),
        ))
    }

    /// Invite → consent → start; returns (session id, candidate token).
    pub async fn started_session(
        &self,
        admin_key: &str,
        name: &str,
    ) -> anyhow::Result<(String, String)> {
        let (id, token) = self.invite(admin_key, name).await?;
        let r = self.post(&format!("/v1/sessions/{id}/consent"), &token, &json!({"notice_id": crate::NOTICE_ID, "notice_sha256": crate::notice_sha256(), "scopes": {"keystroke_dynamics": true, "face_continuity": true}})).await?;
        anyhow::ensure!(r.status == 200, "consent failed: {r:?}");
        let r = self
            .post(&format!("/v1/sessions/{id}/start"), &token, &json!({}))
            .await?;
        anyhow::ensure!(r.status == 200, "start failed: {r:?}");
        Ok((id, token))
    }

    /// Sends telemetry events `from..=to` (edits typing one character each).
    pub async fn send_events(
        &self,
        session: &str,
        token: &str,
        from: u64,
        to: u64,
    ) -> anyhow::Result<Reply> {
        let events: Vec<Value> = (from..=to).map(edit_event).collect();
        self.post(
            &format!("/v1/sessions/{session}/telemetry"),
            token,
            &json!({ "events": events }),
        )
        .await
    }

    /// The candidate submits `files`; the API must accept (200).
    pub async fn submit(
        &self,
        session: &str,
        token: &str,
        files: &[SubmittedFile<'_>],
    ) -> anyhow::Result<()> {
        let files: Vec<Value> = files
            .iter()
            .map(|(path, content)| json!({"path": path, "content": content}))
            .collect();
        let r = self
            .post(
                &format!("/v1/sessions/{session}/submit"),
                token,
                &json!({ "files": files }),
            )
            .await?;
        anyhow::ensure!(r.status == 200, "submit refused: {r:?}");
        Ok(())
    }

    /// Invite → consent → start → telemetry `1..=events` ([`edit_event`]s typing `main.py`; none
    /// when `events` is 0) → submit `files`. Returns (session id, candidate token).
    pub async fn finished_session(
        &self,
        admin_key: &str,
        name: &str,
        events: u64,
        files: &[SubmittedFile<'_>],
    ) -> anyhow::Result<(String, String)> {
        let (session, token) = self.started_session(admin_key, name).await?;
        if events > 0 {
            let r = self.send_events(&session, &token, 1, events).await?;
            anyhow::ensure!(r.status == 200, "telemetry refused: {r:?}");
        }
        self.submit(&session, &token, files).await?;
        Ok((session, token))
    }
}

/// A valid event with sequence `seq` typing `main.py` one character at a time: seq 1 creates
/// the file holding `x` (an editor announces a file before editing it), every later seq inserts
/// one `x` at its end. After seq `n` the file is `n` × `x`.
pub fn edit_event(seq: u64) -> Value {
    if seq == 1 {
        return json!({"seq": 1, "ts": chrono::Utc::now(), "data": {"type": "file_created", "file": "main.py", "content": "x"}});
    }
    json!({"seq": seq, "ts": chrono::Utc::now(), "data": {"type": "edit", "file": "main.py", "position": seq - 1, "deleted": 0, "inserted": "x", "origin": "typed"}})
}

/// Creates an organization and returns its admin API key.
pub async fn new_org(env: &TestEnv, name: &str) -> anyhow::Result<String> {
    let org = clarity_cli::create_organization(
        &env.pool,
        name,
        "Admin",
        &format!("admin@{}.test", name.to_lowercase()),
    )
    .await?;
    Ok(org.admin_api_key)
}

/// The whole product in-process: the API, the relay and every projection, with an organization
/// ("Acme") whose admin key is `admin`.
pub struct Product {
    pub client: Client,
    pub admin: String,
    api: Running,
    relay: Running,
    consumers: Running,
}

impl TestEnv {
    /// Starts the API, the relay and the consumers, and creates the organization "Acme".
    pub async fn spawn_product(&self) -> anyhow::Result<Product> {
        self.spawn_product_with(self.config.clone()).await
    }

    /// Like [`TestEnv::spawn_product`], with the API configured by `config` (other limits, a
    /// metrics token, another clock); the relay and the consumers use this environment's
    /// configuration.
    pub async fn spawn_product_with(&self, config: Config) -> anyhow::Result<Product> {
        let api = self.spawn_api_with(config).await?;
        let relay = self.spawn_relay();
        let consumers = self.spawn_consumers();
        let client = Client::new(&api.base);
        let admin = new_org(self, "Acme").await?;
        Ok(Product {
            client,
            admin,
            api,
            relay,
            consumers,
        })
    }

    /// Waits until the session's integrity analysis (which the worker runs once the session is
    /// finished) has reached the `sessions` read model.
    pub async fn wait_for_analysis(&self, session: &str) -> anyhow::Result<()> {
        self.wait_for::<bool>(
            "the integrity analysis",
            &format!(
                "SELECT integrity_tier IS NOT NULL FROM sessions WHERE session_id = '{session}'"
            ),
            |analysed| *analysed,
        )
        .await?;
        Ok(())
    }

    /// A finished session whose integrity analysis has reached the read model — what reviews,
    /// reports, decisions and audits start from: [`Client::finished_session`], then
    /// [`TestEnv::wait_for_analysis`]. Returns (session id, candidate token).
    pub async fn analysed_session(
        &self,
        client: &Client,
        admin_key: &str,
        name: &str,
        events: u64,
        files: &[SubmittedFile<'_>],
    ) -> anyhow::Result<(String, String)> {
        let (session, token) = client
            .finished_session(admin_key, name, events, files)
            .await?;
        self.wait_for_analysis(&session).await?;
        Ok((session, token))
    }
}

impl Product {
    /// Stops every role gracefully.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.consumers.stop().await?;
        self.relay.stop().await?;
        self.api.stop().await
    }
}
