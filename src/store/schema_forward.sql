-- Version 2: what the forwarder needs to report per target and to find due work per target.

-- When the last attempt on this delivery ended (success or failure): the page shows it.
ALTER TABLE deliveries ADD COLUMN last_attempt_at INTEGER;

-- Each target's delivery thread asks only for its own due rows.
CREATE INDEX deliveries_target_due ON deliveries (target, next_attempt_at) WHERE state = 'pending';
-- Per-target counts and the newest attempt, without scanning every delivery ever made.
CREATE INDEX deliveries_target_state ON deliveries (target, state);
CREATE INDEX deliveries_target_attempt ON deliveries (target, last_attempt_at);
