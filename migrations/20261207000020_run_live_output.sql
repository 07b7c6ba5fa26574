-- A run's output while it runs (issue 14): the runner writes what the run has printed so far
-- (its first 64 KiB) about twice a second, for the candidate's page to show live. The finished
-- run's output is in its event.
ALTER TABLE run_jobs ADD COLUMN live_output text NOT NULL DEFAULT '';
