import { describe, expect, it } from 'vitest';
import { activityFingerprint, counterFingerprint, eventId } from './event-ids.js';

describe('event ids', () => {
  it('fingerprints what a write does: the same write alike, any difference apart', () => {
    const print = counterFingerprint('page:home', 5);
    expect(print).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(counterFingerprint('page:home', 5)).toBe(print);
    expect(counterFingerprint('page:home', 6)).not.toBe(print);
    expect(counterFingerprint('page:hom', 5)).not.toBe(print);
    const activity = { actor: 'a', verb: 'liked', object: 'post:1' };
    expect(activityFingerprint(activity)).toBe(activityFingerprint({ ...activity, data: null }));
    expect(activityFingerprint(activity)).not.toBe(activityFingerprint({ ...activity, data: { n: 1 } }));
    expect(activityFingerprint(activity)).not.toBe(
      activityFingerprint({ ...activity, occurredAt: '2026-01-01T00:00:00Z' }),
    );
    // Parts never run into each other.
    expect(activityFingerprint({ actor: 'ab', verb: 'c', object: 'o' })).not.toBe(
      activityFingerprint({ actor: 'a', verb: 'bc', object: 'o' }),
    );
  });

  it('scopes the key by client and carries the fingerprint', () => {
    expect(eventId('shop', 'k-1', 'F')).toBe('shop:k-1#F');
  });
});
