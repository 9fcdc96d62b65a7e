export {
  decodeEvent,
  counterBody,
  decodeRecord,
  encodeEvent,
  envelopeRecord,
  eventBody,
  singleRecord,
  type DecodeResult,
  type DecodedEvent,
  type RecordResult,
} from './event.codec.js';
export {
  ACTOR_PATTERN,
  COUNTER_NAME_PATTERN,
  EVENT_ID_PATTERN,
  ENVELOPE_VERSION,
  EVENT_VERSION,
  VERB_PATTERN,
  activityRecordedSchema,
  changeEventSchema,
  counterIncrementedSchema,
  counterName,
  type ActivityRecorded,
  type ChangeEvent,
  type ChangeEventType,
  type CounterIncremented,
} from './event.schema.js';
export { activityFingerprint, counterFingerprint, eventId } from './event-ids.js';
