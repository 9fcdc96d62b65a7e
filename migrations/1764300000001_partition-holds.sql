-- Up Migration

-- Partitions a consumer group must not apply: the offset stored in consumer_offsets belongs to an older log than
-- Kafka's (the topic was recreated, or the broker's data was lost), so applying would skip the new log's events
-- below it as if they were applied. Written by the consumer that finds the stored offset beyond the log end, or by
-- `wb topics` when it creates a topic that has stored offsets; removed by `wb offsets rebaseline`, in the
-- transaction that moves the stored offset to the new log start.
CREATE TABLE partition_holds (
  group_id      text        NOT NULL,
  topic         text        NOT NULL,
  partition     integer     NOT NULL CHECK (partition >= 0),
  stored_offset bigint      NOT NULL,
  log_start     bigint      NOT NULL,
  log_end       bigint      NOT NULL,
  reason        text        NOT NULL,
  held_at       timestamptz NOT NULL DEFAULT now(),
  held_by       text        NOT NULL,
  PRIMARY KEY (group_id, topic, partition)
);

-- Down Migration
DROP TABLE partition_holds;
