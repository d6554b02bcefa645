/**
 * Keep-alive pings spread over their interval (transports/ping-rotation.ts): every connection
 * pinged once per interval, a tick pinging only its slot's share, and connections that leave (or
 * are ended by their own ping) never pinged again.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PingRotation, SETTLE_TICKS } from '../src/transports/ping-rotation.ts';

interface Conn {
  readonly name: string;
  pingSlot: number;
}

function conns(count: number): Conn[] {
  return Array.from({ length: count }, (_, i) => ({ name: `c${i}`, pingSlot: -1 }));
}

/** A rotation of `count` connections, ticks of 250 ms, that records its pings and settles in order. */
function recorded(intervalMs: number, count: number): { rotation: PingRotation<Conn>; events: string[] } {
  const events: string[] = [];
  const rotation = new PingRotation<Conn>(
    intervalMs,
    (c) => events.push(`ping ${c.name}`),
    (c) => events.push(`settle ${c.name}`),
    250,
  );
  for (const c of conns(count)) rotation.add(c);
  return { rotation, events };
}

describe('ping rotation', () => {
  it('pings every connection once per interval, a slot of them per tick', () => {
    const pinged: string[][] = [];
    let tick: string[] = [];
    const rotation = new PingRotation<Conn>(2500, (c) => tick.push(c.name), undefined, 250);
    const all = conns(100);
    for (const c of all) rotation.add(c);
    assert.equal(rotation.size, 100);
    for (let t = 0; t < 30; t++) {
      tick = [];
      rotation.tick();
      pinged.push(tick);
    }
    for (const names of pinged) assert.equal(names.length, 10, 'each tick pings a tenth of them');
    for (const start of [0, 10, 20]) {
      const interval = pinged
        .slice(start, start + 10)
        .flat()
        .sort();
      assert.deepEqual(interval, all.map((c) => c.name).sort(), 'each once per interval');
    }
    assert.deepEqual(pinged[0], pinged[10], 'the same slot comes round again after the interval');
  });

  it('never pings a connection that left, and keeps count', () => {
    const pinged = new Set<string>();
    const rotation = new PingRotation<Conn>(1000, (c) => pinged.add(c.name), undefined, 250);
    const [a, b, c] = conns(3) as [Conn, Conn, Conn];
    rotation.add(a);
    rotation.add(b);
    rotation.add(c);
    rotation.delete(b);
    rotation.delete(b);
    assert.equal(rotation.size, 2);
    for (let t = 0; t < 4; t++) rotation.tick();
    assert.deepEqual([...pinged].sort(), ['c0', 'c2']);
    assert.deepEqual([...rotation].map((x) => x.name).sort(), ['c0', 'c2'], 'iterates what is open');
  });

  it('goes on with the slot when a ping ends its own connection (a dead peer)', () => {
    const pinged: string[] = [];
    // An interval of one tick: a single slot, every connection pinged on each tick.
    const rotation = new PingRotation<Conn>(
      100,
      (c) => {
        pinged.push(c.name);
        if (c.name === 'c1') rotation.delete(c);
      },
      undefined,
      250,
    );
    for (const c of conns(4)) rotation.add(c);
    rotation.tick();
    rotation.tick();
    assert.deepEqual(pinged, ['c0', 'c1', 'c2', 'c3', 'c0', 'c2', 'c3']);
    assert.equal(rotation.size, 3);
  });

  it('settles a slot a quarter of the interval after pinging it (at most SETTLE_TICKS)', () => {
    const { rotation, events } = recorded(2000, 8);
    for (let t = 0; t < 10; t++) rotation.tick();
    // Eight slots: a ping waits two ticks (a quarter) for a write before it is sent alone.
    assert.deepEqual(events.slice(0, 8), [
      'ping c0',
      'settle c6',
      'ping c1',
      'settle c7',
      'ping c2',
      'settle c0',
      'ping c3',
      'settle c1',
    ]);
    const long = recorded(25_000, 1);
    let ticks = 0;
    while (!long.events.includes('settle c0') && ticks < 100) {
      long.rotation.tick();
      ticks++;
    }
    assert.equal(ticks, 1 + SETTLE_TICKS, 'at most SETTLE_TICKS at the default interval');
  });

  it('settles right after the ping when the interval is too short to wait', () => {
    const { rotation, events } = recorded(250, 2);
    rotation.tick();
    assert.deepEqual(events, ['ping c0', 'ping c1', 'settle c0', 'settle c1']);
  });
});
