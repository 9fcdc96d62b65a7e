import { describe, expect, it } from 'vitest';
import { SCRUBBED, secretScrubber } from './secret-scrubber.js';

describe('secretScrubber', () => {
  it('removes each secret as written, JSON-escaped and URL-encoded', () => {
    const scrub = secretScrubber(['pa"ss/wo rd', 'api-key-0123456789']);
    const line = JSON.stringify({
      msg: 'connect to postgres://u:pa%22ss%2Fwo%20rd@db/x failed',
      err: { command: { name: 'auth', args: ['pa"ss/wo rd'] } },
      key: 'api-key-0123456789',
    });
    const out = scrub(line);
    expect(out).not.toContain('pa"ss');
    expect(out).not.toContain('pa\\"ss');
    expect(out).not.toContain('pa%22ss');
    expect(out).not.toContain('api-key-0123456789');
    expect(out.split(SCRUBBED).length - 1).toBe(3);
    // Still JSON.
    expect(() => JSON.parse(out) as unknown).not.toThrow();
  });

  it('replaces a longer secret whole when it contains a shorter one', () => {
    const scrub = secretScrubber(['secret', 'secret-and-more']);
    expect(scrub('x secret-and-more y secret')).toBe(`x ${SCRUBBED} y ${SCRUBBED}`);
  });

  it('leaves lines alone without secrets, and ignores very short ones', () => {
    expect(secretScrubber([])('{"a":1}')).toBe('{"a":1}');
    expect(secretScrubber(['pw'])('{"pw":"pw"}')).toBe('{"pw":"pw"}');
  });
});
