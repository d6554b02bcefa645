/**
 * Checks a hook's answer against the contract (types.ts): anything else is `garbage`, a failure
 * of the backend (retryable `hook_unavailable`), never a decision. Pure.
 */
import { isValidPattern } from '@herald/protocol';
import { HookFailure } from './http-hook.js';
import type { HookAnswers, HookName } from './types.js';

const MAX_USER = 200;

export function checkAnswer<N extends HookName>(hook: N, raw: unknown): HookAnswers[N] {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) garbage('the answer must be a JSON object');
  const a = raw as Record<string, unknown>;
  switch (hook) {
    case 'connect': {
      if (typeof a.user !== 'string' || a.user.length > MAX_USER)
        garbage(`"user" must be a string of at most ${MAX_USER} characters`);
      patterns(a.channels, 'channels');
      patterns(a.publish, 'publish');
      expiresAt(a.expiresAt, false);
      break;
    }
    case 'refresh':
      expiresAt(a.expiresAt, true);
      break;
    default:
      break;
  }
  return a as unknown as HookAnswers[N];
}

function patterns(value: unknown, name: string): void {
  if (value === undefined) return;
  if (!Array.isArray(value) || !value.every((p) => isValidPattern(p)))
    garbage(`"${name}" must be a list of channel patterns`);
}

function expiresAt(value: unknown, required: boolean): void {
  if (value === undefined && !required) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) garbage('"expiresAt" must be unix seconds');
}

function garbage(reason: string): never {
  throw new HookFailure('garbage', reason);
}
