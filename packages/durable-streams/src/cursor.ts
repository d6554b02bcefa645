/**
 * `Stream-Cursor` (PROTOCOL.md 10.1): the number of 20-second intervals since 2024-10-09T00:00Z,
 * never going backwards for a client. A client that echoes a cursor at or past the current interval
 * gets one 1 to 3600 seconds further on (random jitter), so cached empty answers expire.
 */
const CURSOR_EPOCH_MS = Date.UTC(2024, 9, 9);
const INTERVAL_MS = 20_000;
const MAX_JITTER_INTERVALS = 3600_000 / INTERVAL_MS;

export function responseCursor(now: number, echoed: string | null, random: () => number = Math.random): string {
  const current = Math.floor((now - CURSOR_EPOCH_MS) / INTERVAL_MS);
  const previous = echoed !== null && /^\d{1,15}$/.test(echoed) ? Number(echoed) : -1;
  if (previous < current) return String(current);
  return String(previous + 1 + Math.floor(random() * MAX_JITTER_INTERVALS));
}
