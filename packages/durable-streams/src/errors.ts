/**
 * A refusal of the Durable Streams protocol: an HTTP status, a code of Herald's error registry
 * (the body is Herald's `{"error": {"code", "message"}}`), and the protocol headers that go with
 * it (a 409 for a closed stream carries `Stream-Closed` and `Stream-Next-Offset`, a stale producer
 * `Producer-Epoch`, a sequence gap `Producer-Expected-Seq` and `Producer-Received-Seq`). DS
 * clients read the status and headers, never the body.
 */
import type { ErrorCode } from '@herald/protocol';

export class DsError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, code: ErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'DsError';
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

export const notFound = (what = 'no stream at this path'): DsError => new DsError(404, 'not_found', what);

/** A soft-deleted stream (forks still read its data), or data the broker no longer holds. */
export const gone = (what: string): DsError => new DsError(410, 'gone', what);
