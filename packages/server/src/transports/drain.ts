/**
 * Waiting for a client to take what the hub has written: the one backpressure primitive of the
 * answer paths (WebSocket command answers, SSE replays), where the hub may write much in one go.
 */
import type { EventEmitter } from 'node:events';

/**
 * Resolves true when `stream` emits 'drain', false after `ms` or when it closes first. Call it
 * only when the stream holds more than its high-water mark, so that a 'drain' is due.
 */
export function drained(stream: EventEmitter, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (value: boolean): void => {
      clearTimeout(timer);
      stream.off('drain', onDrain);
      stream.off('close', onClose);
      resolve(value);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    const timer = setTimeout(() => done(false), ms);
    stream.once('drain', onDrain);
    stream.once('close', onClose);
  });
}

/**
 * Resolves true at once when `buffered()` is at most `bound`, else as `drained` on `stream` (the
 * object whose 'drain' says the bytes left): the pacing of answers and replays (core/replay.ts
 * `Pacer`).
 */
export function drainedBelow(
  stream: EventEmitter,
  buffered: () => number,
  bound: number,
  ms: number,
): Promise<boolean> {
  if (buffered() <= bound) return Promise.resolve(true);
  return drained(stream, ms);
}
