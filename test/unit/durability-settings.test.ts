// durabilityWarnings: the start-up warning for a database server whose COMMIT is not durable.
import { describe, expect, it } from 'vitest';
import { durabilityWarnings } from '../../src/sql/durability-settings.js';

describe('durabilityWarnings', () => {
  it('has nothing to say with fsync = on', () => {
    expect(durabilityWarnings({ fsync: 'on' })).toEqual([]);
  });

  it('warns that acknowledged events can be lost with fsync = off', () => {
    expect(durabilityWarnings({ fsync: 'off' })).toEqual([
      'the database server runs with fsync = off: events answered 202 after COMMIT can be lost if its machine crashes; set fsync = on',
    ]);
  });
});
