/**
 * A user's push preferences: channels muted by pattern, and quiet hours in the user's time zone
 * (pushes are held back then, except `urgency: "high"` ones). Pure: parsing and the two checks.
 */
import { HeraldError, compilePatterns, isValidPattern } from '@herald/protocol';

export interface QuietHours {
  /** "HH:MM", 24-hour, local to `timeZone`. The range may cross midnight (22:00 to 07:00). */
  readonly start: string;
  readonly end: string;
  /** IANA time zone, e.g. "Europe/Paris". Default "UTC". */
  readonly timeZone: string;
}

export interface PushPreferences {
  /** Channel patterns (`*` = any run of characters) whose pushes the user does not want. */
  readonly muted: readonly string[];
  readonly quietHours: QuietHours | null;
}

export const DEFAULT_PREFERENCES: PushPreferences = Object.freeze({ muted: [], quietHours: null });
const MAX_MUTED = 100;
const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

function bad(message: string): never {
  throw new HeraldError('bad_request', message);
}

export function parsePreferences(value: unknown): PushPreferences {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('preferences must be an object');
  const v = value as Record<string, unknown>;
  const unknown = Object.keys(v).find((k) => k !== 'muted' && k !== 'quietHours');
  if (unknown !== undefined) bad(`"${unknown}" is not a preference (muted, quietHours)`);
  const muted = v.muted ?? [];
  if (!Array.isArray(muted) || muted.length > MAX_MUTED || !muted.every((p) => isValidPattern(p))) {
    bad(`muted must be a list of at most ${MAX_MUTED} channel patterns`);
  }
  let quietHours: QuietHours | null = null;
  if (v.quietHours !== undefined && v.quietHours !== null) {
    const q = v.quietHours as Record<string, unknown>;
    if (typeof q !== 'object' || Array.isArray(q)) bad('quietHours must be an object or null');
    if (typeof q.start !== 'string' || !HHMM.test(q.start)) bad('quietHours.start must be "HH:MM"');
    if (typeof q.end !== 'string' || !HHMM.test(q.end)) bad('quietHours.end must be "HH:MM"');
    const timeZone = q.timeZone ?? 'UTC';
    if (typeof timeZone !== 'string' || !isTimeZone(timeZone)) bad('quietHours.timeZone must be an IANA time zone');
    quietHours = { start: q.start, end: q.end, timeZone };
  }
  return { muted: muted as string[], quietHours };
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export function isMuted(preferences: PushPreferences, channel: string): boolean {
  return preferences.muted.length > 0 && compilePatterns(preferences.muted)(channel);
}

/** Whether `at` (epoch ms) falls in the quiet hours: start inclusive, end exclusive. */
export function inQuietHours(preferences: PushPreferences, at: number): boolean {
  const q = preferences.quietHours;
  if (q === null || q.start === q.end) return false;
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone: q.timeZone,
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(new Date(at));
  const hour = Number(parts.find((p) => p.type === 'hour')?.value);
  const minute = Number(parts.find((p) => p.type === 'minute')?.value);
  const now = hour * 60 + minute;
  const [start, end] = [q.start, q.end].map((t) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3))) as [number, number];
  return start < end ? now >= start && now < end : now >= start || now < end;
}
