// The bookkeeping behind the export limits: concurrent exports per client and in all
// (src/http/export-slots.ts), and the reader's minimum rate (src/http/throughput-floor.ts).
import { describe, expect, it } from 'vitest';
import { ExportSlots } from '../../src/http/export-slots.js';
import { ThroughputFloor } from '../../src/http/throughput-floor.js';

describe('ExportSlots', () => {
  it('refuses a client over its limit before looking at the total', () => {
    const slots = new ExportSlots(2, 2);
    expect([slots.take('a').ok, slots.take('a').ok]).toEqual([true, true]);
    expect(slots.take('a')).toEqual({ ok: false, refusal: 'client_limit' });
    expect(slots.take('b')).toEqual({ ok: false, refusal: 'all_busy' });
  });

  it('forgets a client whose exports are all over, and counts a release once', () => {
    const slots = new ExportSlots(3, 2);
    const first = slots.take('a');
    const second = slots.take('a');
    if (!first.ok || !second.ok) throw new Error('expected two slots');
    first.release();
    first.release();
    expect(slots.clientCount).toBe(1);
    second.release();
    expect(slots.clientCount).toBe(0);
    expect([slots.take('b').ok, slots.take('b').ok, slots.take('c').ok]).toEqual([
      true,
      true,
      true,
    ]);
  });

  it('never holds more clients than there are slots', () => {
    const slots = new ExportSlots(4, 1);
    for (let i = 0; i < 1000; i++) slots.take(`client-${i}`);
    expect(slots.clientCount).toBe(4);
  });
});

describe('ThroughputFloor', () => {
  it('allows one window of waiting to start with, and no limit at a floor of 0', () => {
    expect(new ThroughputFloor(1000, 5000).allowedWaitMs()).toBe(5000);
    expect(new ThroughputFloor(0, 5000).allowedWaitMs()).toBe(Number.POSITIVE_INFINITY);
  });

  it('never runs dry for a reader at the floor, however lumpy its progress', () => {
    const floor = new ThroughputFloor(1000, 5000);
    for (let i = 0; i < 100; i++) {
      // 4 s waiting for 4000 bytes, then 1 s for 1000: 1000 bytes/s on average.
      expect(floor.allowedWaitMs()).toBeGreaterThanOrEqual(4000);
      floor.took(4000, 4000);
      floor.took(1000, 1000);
    }
  });

  it('runs dry for a reader at half the floor within two windows, whatever it took before', () => {
    const floor = new ThroughputFloor(1000, 5000);
    floor.took(1_000_000, 0); // a burst early on banks no more than one window
    let waitedMs = 0;
    while (floor.allowedWaitMs() >= 1000) {
      floor.took(500, 1000);
      waitedMs += 1000;
    }
    expect(waitedMs).toBeLessThanOrEqual(10_000);
  });
});
