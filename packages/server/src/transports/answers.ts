/** Answer shapes and parameter checks shared by the WebSocket commands and the HTTP API. */
import { HeraldError, isValidEpoch, type Position } from '@herald/protocol';
import type { PublicationRecord } from '../broker/broker.js';

export function parsePosition(value: unknown): Position {
  if (typeof value === 'object' && value !== null) {
    const { offset, epoch } = value as Record<string, unknown>;
    if (typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0 && isValidEpoch(epoch)) {
      return { offset, epoch };
    }
  }
  throw new HeraldError('bad_request', 'since must be {"offset": <integer >= 0>, "epoch": <string>}');
}

export function historyJson(
  publications: readonly PublicationRecord[],
  top: Position,
  recovered: boolean | undefined,
): string {
  const r = recovered === undefined ? '' : `,"recovered":${recovered}`;
  return `{"publications":[${publications.map((p) => p.json).join(',')}],"offset":${top.offset},"epoch":${JSON.stringify(top.epoch)}${r}}`;
}

/** `subscribe` command params (WebSocket and Socket.IO) as core options; bad ones are `bad_request`. */
export function subscribeParams(params: Readonly<Record<string, unknown>>): { since?: Position; joinLeave: boolean } {
  const since = params.since === undefined ? undefined : parsePosition(params.since);
  if (params.joinLeave !== undefined && typeof params.joinLeave !== 'boolean') {
    throw new HeraldError('bad_request', 'joinLeave must be a boolean');
  }
  const joinLeave = params.joinLeave === true;
  return since === undefined ? { joinLeave } : { since, joinLeave };
}

/** `history` command params (WebSocket and Socket.IO) as a core query; bad ones are `bad_request`. */
export function historyParams(params: Readonly<Record<string, unknown>>): { since?: Position; limit?: number } {
  const since = params.since === undefined ? undefined : parsePosition(params.since);
  if (params.limit !== undefined && typeof params.limit !== 'number') {
    throw new HeraldError('bad_request', 'limit must be a number');
  }
  return { ...(since === undefined ? {} : { since }), ...(params.limit === undefined ? {} : { limit: params.limit }) };
}
