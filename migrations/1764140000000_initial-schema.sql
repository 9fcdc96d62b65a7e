-- Up Migration

-- The system of record for counters. `version` grows by one with every transaction that changes the row; the
-- Redis view keeps the (value, version) it last saw and only ever moves forward (DESIGN.md section 7).
CREATE TABLE counters (
  name       text        PRIMARY KEY CHECK (char_length(name) BETWEEN 1 AND 200),
  value      bigint      NOT NULL DEFAULT 0,
  version    bigint      NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Activities are immutable; the id is the event id, so inserting twice is a no-op (ON CONFLICT DO NOTHING).
CREATE TABLE activities (
  id          text        PRIMARY KEY,
  actor       text        NOT NULL,
  verb        text        NOT NULL,
  object      text        NOT NULL,
  occurred_at timestamptz NOT NULL,
  data        jsonb,
  accepted_at timestamptz NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
-- The actor feed, newest first, paginated by (occurred_at, id).
CREATE INDEX activities_actor_occurred_at_idx ON activities (actor, occurred_at DESC, id DESC);

-- Dedupe ledger: every event id whose effect is in this database, written in the same transaction as the
-- effect. Pruned by applied_at after the retention window; replays older than that are made exact by
-- consumer_offsets instead.
CREATE TABLE processed_events (
  event_id   text        PRIMARY KEY,
  source     text        NOT NULL CHECK (source IN ('consumer', 'write-through')),
  applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_events_applied_at_idx ON processed_events (applied_at);

-- Per consumer group and partition, the next Kafka offset to apply, written in the same transaction as the
-- effects. It is the truth about progress: a delivered message below it is skipped.
CREATE TABLE consumer_offsets (
  group_id    text        NOT NULL,
  topic       text        NOT NULL,
  partition   integer     NOT NULL CHECK (partition >= 0),
  next_offset bigint      NOT NULL CHECK (next_offset >= 0),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (group_id, topic, partition)
);

-- Down Migration
DROP TABLE consumer_offsets;
DROP TABLE processed_events;
DROP TABLE activities;
DROP TABLE counters;
