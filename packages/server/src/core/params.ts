/** Command parameters from the wire, checked into core options; bad ones are `bad_request`. */
import { HeraldError, isValidEpoch, type Position } from '@herald/protocol';
import type { HistoryInput, SubscribeOptions } from './hub.js';

export function parsePosition(value: unknown): Position {
  if (typeof value === 'object' && value !== null) {
    const { offset, epoch } = value as Record<string, unknown>;
    if (typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0 && isValidEpoch(epoch)) {
      return { offset, epoch };
    }
  }
  throw new HeraldError('bad_request', 'since must be {"offset": <integer >= 0>, "epoch": <string>}');
}

/** `subscribe` params: `since`? and `joinLeave`?. */
export function subscribeOptions(params: Readonly<Record<string, unknown>>): SubscribeOptions {
  const since = params.since === undefined ? undefined : parsePosition(params.since);
  if (params.joinLeave !== undefined && typeof params.joinLeave !== 'boolean') {
    throw new HeraldError('bad_request', 'joinLeave must be a boolean');
  }
  const joinLeave = params.joinLeave === true;
  return since === undefined ? { joinLeave } : { since, joinLeave };
}

/** `history` params: `limit`?, `since`? and `raw`? (the stored publications, text streams not rolled up). */
export function historyQuery(params: Readonly<Record<string, unknown>>): HistoryInput {
  const since = params.since === undefined ? undefined : parsePosition(params.since);
  if (params.limit !== undefined && typeof params.limit !== 'number') {
    throw new HeraldError('bad_request', 'limit must be a number');
  }
  if (params.raw !== undefined && typeof params.raw !== 'boolean') {
    throw new HeraldError('bad_request', 'raw must be a boolean');
  }
  return {
    ...(since === undefined ? {} : { since }),
    ...(params.limit === undefined ? {} : { limit: params.limit }),
    ...(params.raw === true ? { raw: true } : {}),
  };
}
