//! Who acts: the one actor type, and its one wire format in the events' metadata.
//!
//! Every event the application stores carries `"actor"` in its metadata, written as
//!
//! | actor | written as |
//! |---|---|
//! | an organization member (staff) | `member:<member id>` |
//! | the candidate of the session (through their session token) | `candidate` |
//! | a background role of Clarity itself | `system:<role>` — `system:scheduler`, `system:integrity-worker`, `system:seed` |
//!
//! Events stored before this format was settled carry older spellings, and stored events never
//! change, so [`Actor::from_str`] reads those too: a bare member id (assessment and session
//! commands of staff), and `scheduler`, `integrity-worker`, `seed` without the `system:` prefix.
//! Written back, an old spelling comes out in the one format.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// Who issued a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    /// An organization member, by member id.
    Member(Uuid),
    /// The candidate of the session the command is about (the session token names the session,
    /// and a session has one candidate).
    Candidate,
    /// One of Clarity's own background roles.
    System(SystemRole),
}

/// The background roles that issue commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemRole {
    /// Expires sessions whose deadline (and grace) has passed.
    Scheduler,
    /// Records the integrity analysis of finished sessions.
    IntegrityWorker,
    /// Loads the built-in assessment library.
    Seed,
    /// Runs candidate code in the sandbox and records runs and grades.
    Runner,
}

impl SystemRole {
    /// Every role.
    pub const ALL: [SystemRole; 4] = [
        Self::Scheduler,
        Self::IntegrityWorker,
        Self::Seed,
        Self::Runner,
    ];

    /// The role's name in the wire format.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduler => "scheduler",
            Self::IntegrityWorker => "integrity-worker",
            Self::Seed => "seed",
            Self::Runner => "runner",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == name)
    }
}

impl fmt::Display for Actor {
    /// The one wire format (see the module documentation).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Member(id) => write!(f, "member:{id}"),
            Self::Candidate => f.write_str("candidate"),
            Self::System(role) => write!(f, "system:{}", role.as_str()),
        }
    }
}

/// The stored text is none of the actor spellings, old or new.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an actor: {0:?}")]
pub struct UnknownActor(pub String);

impl FromStr for Actor {
    type Err = UnknownActor;

    /// Reads the one format and every older spelling found in stored events.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownActor(text.to_string());
        if text == "candidate" {
            return Ok(Self::Candidate);
        }
        if let Some(id) = text.strip_prefix("member:") {
            return Uuid::try_parse(id).map(Self::Member).map_err(|_| unknown());
        }
        if let Some(role) = text.strip_prefix("system:") {
            return SystemRole::parse(role)
                .map(Self::System)
                .ok_or_else(unknown);
        }
        // Older spellings: a bare member id, a role's bare name.
        if let Ok(id) = Uuid::try_parse(text) {
            return Ok(Self::Member(id));
        }
        SystemRole::parse(text)
            .map(Self::System)
            .ok_or_else(unknown)
    }
}

impl Actor {
    /// The actor recorded in an event's metadata (`None` when it has none or an unknown one,
    /// as records written by hand or by tools may).
    pub fn from_metadata(metadata: &std::collections::HashMap<String, String>) -> Option<Self> {
        metadata.get("actor")?.parse().ok()
    }

    /// The member, when a member acted.
    pub fn member_id(&self) -> Option<Uuid> {
        match self {
            Self::Member(id) => Some(*id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_actor_reads_back_from_its_wire_format() {
        let member = Uuid::now_v7();
        let actors = [Actor::Member(member), Actor::Candidate]
            .into_iter()
            .chain(SystemRole::ALL.map(Actor::System));
        for actor in actors {
            assert_eq!(actor.to_string().parse::<Actor>(), Ok(actor));
        }
    }

    #[test]
    fn the_wire_format_is_kind_then_id_or_role() {
        let member = Uuid::parse_str("0190b7c2-0000-7000-8000-000000000001").unwrap();
        assert_eq!(
            Actor::Member(member).to_string(),
            "member:0190b7c2-0000-7000-8000-000000000001"
        );
        assert_eq!(Actor::Candidate.to_string(), "candidate");
        assert_eq!(
            Actor::System(SystemRole::Scheduler).to_string(),
            "system:scheduler"
        );
        assert_eq!(
            Actor::System(SystemRole::IntegrityWorker).to_string(),
            "system:integrity-worker"
        );
        assert_eq!(Actor::System(SystemRole::Seed).to_string(), "system:seed");
    }

    #[test]
    fn older_spellings_in_stored_events_still_read() {
        let member = Uuid::now_v7();
        assert_eq!(member.to_string().parse(), Ok(Actor::Member(member)));
        assert_eq!(
            format!("member:{member}").parse(),
            Ok(Actor::Member(member))
        );
        assert_eq!("candidate".parse(), Ok(Actor::Candidate));
        assert_eq!(
            "scheduler".parse(),
            Ok(Actor::System(SystemRole::Scheduler))
        );
        assert_eq!(
            "integrity-worker".parse(),
            Ok(Actor::System(SystemRole::IntegrityWorker))
        );
        assert_eq!("seed".parse(), Ok(Actor::System(SystemRole::Seed)));
    }

    #[test]
    fn an_unknown_spelling_is_refused_not_guessed() {
        for text in [
            "",
            "an older API",
            "member:",
            "member:42",
            "system:cron",
            "Candidate",
        ] {
            assert_eq!(
                text.parse::<Actor>(),
                Err(UnknownActor(text.to_string())),
                "{text:?}"
            );
        }
    }

    #[test]
    fn metadata_without_a_known_actor_has_none() {
        let mut metadata = std::collections::HashMap::new();
        assert_eq!(Actor::from_metadata(&metadata), None);
        metadata.insert("actor".to_string(), "an older API".to_string());
        assert_eq!(Actor::from_metadata(&metadata), None);
        metadata.insert("actor".to_string(), "candidate".to_string());
        assert_eq!(Actor::from_metadata(&metadata), Some(Actor::Candidate));
    }
}
