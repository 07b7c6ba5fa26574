-- Comparison across organizations (issue 15): an organization may opt in to having its
-- candidates' submissions to Clarity's built-in assessments compared with those of other
-- organizations that opted in too (copied code and replayed keystroke timing). A match names the
-- other session only by an opaque reference: neither organization sees the other's candidate,
-- code or timing. Off by default; who changed it and when is kept beside it.
ALTER TABLE organizations
    ADD COLUMN cross_org_comparison boolean NOT NULL DEFAULT false,
    ADD COLUMN cross_org_comparison_changed_by uuid,
    ADD COLUMN cross_org_comparison_changed_at timestamptz;
