-- Up Migration

-- The dead letters `wb dlq redrive` has sent back, by their place on the dead-letter topic: each letter goes back
-- at most once, whatever filter a later redrive uses. The letter's Kafka timestamp is kept with it, so that a
-- letter at the same place of a recreated dead-letter topic is not taken for one already sent.
CREATE TABLE dlq_redrives (
  dlq_topic        text        NOT NULL,
  dlq_partition    integer     NOT NULL CHECK (dlq_partition >= 0),
  dlq_offset       bigint      NOT NULL CHECK (dlq_offset >= 0),
  letter_timestamp bigint      NOT NULL,
  target_topic     text        NOT NULL,
  redriven_at      timestamptz NOT NULL DEFAULT now(),
  redriven_by      text        NOT NULL,
  PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
);

-- Down Migration
DROP TABLE dlq_redrives;
