/**
 * `POST /api/batch`: several server API commands in one request, answered in order. The batch
 * starts each command as soon as the one before it has started, without waiting for it (unless
 * the command is `sequential`), so publications on different channels are stored concurrently
 * and publications on one channel in command order (api-methods.ts, `ApiMethod.run`). Every
 * command gets its own reply; one that fails never fails the others. The answer comes once every
 * command has settled: a `result` means the command took effect (a publication: stored).
 */
import { HeraldError, type WireError } from '@herald/protocol';
import type { Logger } from 'pino';
import type { Hub } from '../core/hub.js';
import { API_METHODS, wireError, type ApiCaller, type ApiMethod, type ApiParams } from './api-methods.js';

export type BatchReply = { readonly result: unknown } | { readonly error: WireError };

interface Command {
  readonly name: string;
  readonly method: ApiMethod;
  readonly params: ApiParams;
}

function isObject(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A command of the batch, or why it cannot run (its reply). */
function parseCommand(value: unknown, caller: ApiCaller): Command | HeraldError {
  if (!isObject(value)) return new HeraldError('bad_request', 'a command must be an object {method, params}');
  const { method: name, params = {} } = value;
  if (typeof name !== 'string') return new HeraldError('bad_request', 'method must be a string');
  const method = API_METHODS.get(name);
  if (method === undefined) return new HeraldError('bad_request', `unknown method "${name.slice(0, 100)}"`);
  if (!isObject(params)) return new HeraldError('bad_request', 'params must be an object');
  if (method.access === 'server' && caller.kind !== 'server') {
    return new HeraldError('forbidden', `${name} needs the API key; client tokens may only publish`);
  }
  return { name, method, params };
}

export async function runBatch(
  hub: Hub,
  body: unknown,
  caller: ApiCaller,
  maxItems: number,
  logger: Logger,
): Promise<{ replies: BatchReply[] }> {
  if (!isObject(body) || !Array.isArray(body.commands) || body.commands.length === 0) {
    throw new HeraldError(
      'bad_request',
      'body must be {"commands": [{"method", "params"}, ...]} with at least one command',
    );
  }
  const commands = body.commands.map((command: unknown) => parseCommand(command, caller));
  let cost = 0;
  for (const command of commands) cost += command instanceof HeraldError ? 1 : command.method.cost(command.params);
  if (cost > maxItems) {
    throw new HeraldError('too_large', `at most ${maxItems} publications per request (this batch makes ${cost})`);
  }
  const replies: Promise<BatchReply>[] = [];
  for (const command of commands) {
    if (command instanceof HeraldError) {
      replies.push(Promise.resolve({ error: command.toWire() }));
      continue;
    }
    if (command.method.sequential === true) await Promise.all(replies);
    replies.push(start(hub, command, caller, logger));
  }
  return { replies: await Promise.all(replies) };
}

/** Runs one command; its reply never rejects. */
async function start(hub: Hub, command: Command, caller: ApiCaller, logger: Logger): Promise<BatchReply> {
  try {
    return { result: await command.method.run(hub, command.params, caller) };
  } catch (error) {
    if (!(error instanceof HeraldError)) logger.error({ err: error, method: command.name }, 'api batch command failed');
    return { error: wireError(error) };
  }
}
