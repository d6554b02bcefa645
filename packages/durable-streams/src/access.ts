/**
 * Who may do what under /ds/. The Durable Streams protocol has no authentication of its own
 * (PROTOCOL.md 12.1 leaves it to the server); Herald applies its own credentials to the stream's
 * channel, as for every other transport:
 *
 * - `Authorization: Bearer <HERALD_API_KEY>`: everything.
 * - a client JWT (the `Authorization` header, the `token` query parameter, or the configured
 *   cookie): reads (GET, HEAD) on channels its `channels` patterns match, writes (PUT, POST,
 *   DELETE) on channels its `publish` patterns match; a fork also needs read on its source.
 * - no credentials: reads of channels in HERALD_ANONYMOUS_CHANNELS; never writes.
 *
 * With access `open` (HERALD_DURABLE_STREAMS=open) anyone reaching the hub may do anything: for
 * development and the conformance suite only.
 */
import type { IncomingMessage } from 'node:http';
import { HeraldError } from '@herald/protocol';
import { ApiKey, authenticate, requestToken, type Credentials, type TransportContext } from '@herald/server';

export type Access = 'auth' | 'open';

export type Caller =
  | { readonly kind: 'server' }
  | { readonly kind: 'open' }
  | { readonly kind: 'client'; readonly credentials: Credentials; readonly anonymous: boolean };

export class AccessPolicy {
  readonly #ctx: TransportContext;
  readonly #apiKey: ApiKey;
  readonly #access: Access;

  constructor(ctx: TransportContext, apiKey: string, access: Access) {
    this.#ctx = ctx;
    this.#apiKey = new ApiKey(apiKey);
    this.#access = access;
  }

  async caller(req: IncomingMessage, url: URL): Promise<Caller> {
    if (this.#access === 'open') return { kind: 'open' };
    const token = requestToken(req, url, this.#ctx.tokenCookie);
    if (token !== undefined && this.#apiKey.matches(token)) return { kind: 'server' };
    if (token === undefined) {
      // Anonymous callers read the anonymous channels; with none configured they may do nothing.
      return { kind: 'client', credentials: this.#ctx.tokens.anonymous(), anonymous: true };
    }
    return { kind: 'client', credentials: await authenticate(this.#ctx, token), anonymous: false };
  }

  requireRead(caller: Caller, channel: string): void {
    if (caller.kind !== 'client' || caller.credentials.canSubscribe(channel)) return;
    throw refusal(caller, `not permitted to read ${channel}`);
  }

  requireWrite(caller: Caller, channel: string): void {
    if (caller.kind !== 'client' || caller.credentials.canPublish(channel)) return;
    throw refusal(caller, `not permitted to write ${channel}`);
  }

  /** The user the caller's live reads count against (per-user connection caps); '' for none. */
  userOf(caller: Caller): string {
    return caller.kind === 'client' ? caller.credentials.userId : '';
  }
}

function refusal(caller: Caller & { kind: 'client' }, message: string): HeraldError {
  if (caller.anonymous) {
    return new HeraldError('unauthorized', 'a token or the API key is required (Authorization: Bearer ...)');
  }
  return new HeraldError('forbidden', message);
}
