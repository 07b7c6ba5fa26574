-- Face models an organization registered with labelled calibration scores (issue 15). Clarity
-- derives the threshold and its measured error rates (`clarity_integrity::face::calibrate`);
-- the integrity worker interprets face checks of a model version only with a calibration (a
-- registered one, or one built into Clarity). A registration is never changed: a recalibrated
-- model is a new model version, so every past analysis keeps the calibration it used.
CREATE TABLE face_models (
    org_id uuid NOT NULL REFERENCES organizations (id),
    model_id text NOT NULL CHECK (length(model_id) BETWEEN 1 AND 200),
    model_version text NOT NULL CHECK (length(model_version) BETWEEN 1 AND 100),
    threshold double precision NOT NULL CHECK (threshold BETWEEN 0 AND 1),
    false_non_match_rate double precision NOT NULL CHECK (false_non_match_rate BETWEEN 0 AND 1),
    false_match_rate double precision NOT NULL CHECK (false_match_rate BETWEEN 0 AND 1),
    genuine_pairs integer NOT NULL CHECK (genuine_pairs > 0),
    impostor_pairs integer NOT NULL CHECK (impostor_pairs > 0),
    -- SHA-256 of the canonical JSON of the submitted scores: what the calibration was made from.
    scores_sha256 text NOT NULL,
    registered_by uuid NOT NULL REFERENCES members (id),
    registered_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, model_id, model_version)
);
