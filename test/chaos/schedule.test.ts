import { describe, expect, it } from 'vitest';
import { FAULT_KINDS, type FaultKind, Prng, schedule } from './engine/index.js';

const options = { faults: FAULT_KINDS, downtimeMs: 8000, recoveryMs: 4000, overlap: 0.5 };

function firstEpisodes(seed: number, count: number) {
  const episodes = [];
  for (const episode of schedule(new Prng(seed), options)) {
    episodes.push(episode);
    if (episodes.length === count) break;
  }
  return episodes;
}

/** The chaos engine's schedule (test/chaos/engine/faults.ts), without any service. */
describe('chaos schedule', () => {
  it('is a function of the seed', () => {
    expect(firstEpisodes(7, 40)).toEqual(firstEpisodes(7, 40));
    expect(firstEpisodes(7, 40)).not.toEqual(firstEpisodes(8, 40));
  });

  it('injects every kind once per round, and pairs only faults on different things', () => {
    for (let seed = 0; seed < 50; seed++) {
      const episodes = firstEpisodes(seed, 60);
      const rounds = new Map<number, FaultKind[]>();
      for (const e of episodes) rounds.set(e.round, [...(rounds.get(e.round) ?? []), ...e.faults.map((f) => f.kind)]);
      const complete = [...rounds].filter(([round]) => round < Math.max(...rounds.keys()));
      for (const [, kinds] of complete) expect([...kinds].sort()).toEqual([...FAULT_KINDS].sort());
      for (const { faults } of episodes) {
        if (faults.length < 2) continue;
        const kinds = faults.map((f) => f.kind);
        expect(kinds).not.toContain('replay');
        expect(kinds).not.toContain('topic-recreate');
        const server = (k: FaultKind) => /^(kafka|postgres|redis)-/.exec(k)?.[1] ?? k;
        expect(new Set(kinds.map(server)).size, kinds.join(' + ')).toBe(kinds.length);
      }
    }
  });
});
