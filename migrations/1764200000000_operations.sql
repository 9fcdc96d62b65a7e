-- Up Migration

-- Replays asked of a running consumer group by the ops CLI (`replay --execute`): each member seeks the
-- partitions it owns to the target offset and acknowledges. Kafka cannot move a live group's offsets from
-- outside; the members do it themselves, so the fleet keeps running.
CREATE TABLE replay_requests (
  id              bigserial   PRIMARY KEY,
  group_id        text        NOT NULL,
  topic           text        NOT NULL,
  partition       integer     NOT NULL CHECK (partition >= 0),
  target_offset   bigint      NOT NULL CHECK (target_offset >= 0),
  requested_at    timestamptz NOT NULL DEFAULT now(),
  requested_by    text        NOT NULL,
  acknowledged_at timestamptz,
  acknowledged_by text
);
CREATE INDEX replay_requests_open_idx ON replay_requests (group_id) WHERE acknowledged_at IS NULL;

-- What operators did with the CLI: who, when, the command, its plan and outcome.
CREATE TABLE ops_audit (
  id       bigserial   PRIMARY KEY,
  at       timestamptz NOT NULL DEFAULT now(),
  actor    text        NOT NULL,
  command  text        NOT NULL,
  args     jsonb       NOT NULL,
  plan     jsonb,
  outcome  text        NOT NULL
);

-- Down Migration
DROP TABLE ops_audit;
DROP TABLE replay_requests;
