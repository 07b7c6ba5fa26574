//! The monitoring notice candidates read before they consent. Its text is content
//! (`catalogue/notices/<id>.txt`, embedded at build time); every version ever shown stays in the
//! binary under its id and is never edited, so a `ConsentRecorded` event's `notice_version` and
//! `notice_sha256` always name the exact text the candidate agreed to. A changed notice is a new
//! file with a new id, and [`CURRENT`] moves to it.

use sha2::{Digest, Sha256};

use crate::catalogue::embedded_files;

/// The folder of `catalogue/` that holds the notices.
pub const DIR: &str = "notices";

/// The id of the notice new candidates are shown.
pub const CURRENT: &str = "monitoring-notice-v1";

/// A version of the monitoring notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// e.g. `monitoring-notice-v1`.
    pub id: &'static str,
    /// The text, first line the title, paragraphs separated by blank lines.
    pub text: &'static str,
}

impl Notice {
    /// Lowercase hex SHA-256 of the text's UTF-8 bytes.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.text.as_bytes()))
    }

    /// The title (the first line).
    pub fn title(&self) -> &'static str {
        self.text.lines().next().unwrap_or_default().trim()
    }

    /// The body (everything after the title line), trimmed.
    pub fn body(&self) -> &'static str {
        self.text
            .split_once('\n')
            .map_or("", |(_, rest)| rest)
            .trim()
    }
}

/// The notice with this id, if this build knows it.
pub fn find(id: &str) -> Option<Notice> {
    let path = format!("{DIR}/{id}.txt");
    embedded_files()
        .into_iter()
        .find(|(p, _)| *p == path)
        .map(|(p, text)| Notice {
            id: p
                .strip_prefix(DIR)
                .and_then(|p| p.strip_prefix('/'))
                .and_then(|p| p.strip_suffix(".txt"))
                .expect("matched above"),
            text,
        })
}

/// The notice new candidates are shown.
pub fn current() -> Notice {
    find(CURRENT).expect("the current notice is embedded")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned: a notice a candidate has consented to must never change. Edit the text only by
    /// adding a new file and moving `CURRENT`.
    const PINNED: [(&str, &str); 1] = [(
        "monitoring-notice-v1",
        "b5fbefd474171580d5225b19768b836e885fd31981ac186bb77cc452611d6aa4",
    )];

    #[test]
    fn every_notice_ever_shown_is_still_here_unchanged() {
        for (id, digest) in PINNED {
            let notice = find(id).unwrap_or_else(|| panic!("{id} is missing"));
            assert_eq!(notice.sha256(), digest, "{id} changed");
        }
        assert!(PINNED.iter().any(|(id, _)| *id == CURRENT));
    }

    #[test]
    fn the_current_notice_has_a_title_and_a_body_and_unknown_ids_are_none() {
        let notice = current();
        assert_eq!(notice.title(), "How this assessment is monitored");
        assert!(notice.body().contains("keystroke timing"));
        assert!(find("monitoring-notice-v0").is_none());
        assert!(find("../library").is_none());
    }
}
