/**
 * What an append or close does, decided from the stream's record alone: a pure function, so the
 * rules of PROTOCOL.md 5.2 and 5.2.1 are tested case by case, and the store only carries out the
 * verdict. The order of the checks is the protocol's precedence: a closed stream first, then the
 * content type, then the producer (a duplicate wins over a `Stream-Seq` conflict), then `Stream-Seq`.
 */
import { DsError } from './errors.js';
import { mediaType, type AppendRequest, type Producer } from './headers.js';
import { formatOffset } from './offsets.js';
import type { StreamRecord } from './record.js';

export type ProducerVerdict =
  | { readonly kind: 'accept' }
  | { readonly kind: 'duplicate'; readonly highest: number }
  | { readonly kind: 'stale'; readonly current: number }
  | { readonly kind: 'gap'; readonly expected: number }
  | { readonly kind: 'bad-epoch-start' };

/** Kafka-style producer fencing and deduplication (PROTOCOL.md 5.2.1, validation logic). */
export function checkProducer(state: { epoch: number; seq: number } | undefined, producer: Producer): ProducerVerdict {
  const { epoch, seq } = producer;
  if (state === undefined) return seq === 0 ? { kind: 'accept' } : { kind: 'gap', expected: 0 };
  if (epoch < state.epoch) return { kind: 'stale', current: state.epoch };
  if (epoch > state.epoch) return seq === 0 ? { kind: 'accept' } : { kind: 'bad-epoch-start' };
  if (seq <= state.seq) return { kind: 'duplicate', highest: state.seq };
  return seq === state.seq + 1 ? { kind: 'accept' } : { kind: 'gap', expected: state.seq + 1 };
}

export type AppendVerdict =
  /** Publish it; `closes` when the stream closes with it. */
  | { readonly kind: 'write'; readonly closes: boolean }
  /** Answer without writing (a duplicate or a repeated close): status and headers. */
  | { readonly kind: 'answer'; readonly status: number; readonly headers: Record<string, string> };

/**
 * The verdict for a POST carrying `hasData` content (or none: a close). Refusals are thrown as
 * DsErrors with the protocol's status and headers.
 */
export function decideAppend(record: StreamRecord, request: AppendRequest, hasData: boolean): AppendVerdict {
  const { producer } = request;
  const tail = formatOffset(record.tail);
  if (!hasData && !request.closed) {
    throw new DsError(400, 'bad_request', 'an empty body appends nothing; send Stream-Closed: true to close');
  }
  if (record.closed) {
    const closing = !hasData && request.closed;
    if (closing || (producer !== undefined && sameProducerWrite(record.closedBy, producer))) {
      return {
        kind: 'answer',
        status: 204,
        headers: {
          'Stream-Next-Offset': tail,
          'Stream-Closed': 'true',
          ...(producer === undefined
            ? {}
            : producerHeaders(producer.epoch, record.producers[producer.id]?.seq ?? producer.seq)),
        },
      };
    }
    throw new DsError(409, 'conflict', 'the stream is closed', { 'Stream-Closed': 'true', 'Stream-Next-Offset': tail });
  }
  if (hasData) {
    if (request.contentType === undefined) throw new DsError(400, 'bad_request', 'an append needs a Content-Type');
    if (mediaType(request.contentType) !== mediaType(record.contentType)) {
      throw new DsError(409, 'conflict', `the stream's content type is ${record.contentType}`);
    }
  }
  if (producer !== undefined) {
    const verdict = checkProducer(record.producers[producer.id], producer);
    switch (verdict.kind) {
      case 'stale':
        throw new DsError(403, 'forbidden', 'a newer producer epoch has written to this stream', {
          'Producer-Epoch': String(verdict.current),
        });
      case 'bad-epoch-start':
        throw new DsError(400, 'bad_request', 'a new producer epoch starts at Producer-Seq 0');
      case 'gap':
        throw new DsError(409, 'conflict', `Producer-Seq ${producer.seq} skips ahead of ${verdict.expected}`, {
          'Producer-Expected-Seq': String(verdict.expected),
          'Producer-Received-Seq': String(producer.seq),
        });
      case 'duplicate':
        return {
          kind: 'answer',
          status: 204,
          headers: { 'Stream-Next-Offset': tail, ...producerHeaders(producer.epoch, verdict.highest) },
        };
      case 'accept':
        break;
    }
  }
  if (request.streamSeq !== undefined && record.streamSeq !== undefined) {
    if (compareBytes(request.streamSeq, record.streamSeq) <= 0) {
      throw new DsError(409, 'conflict', 'Stream-Seq must grow (compared byte by byte)');
    }
  }
  return { kind: 'write', closes: request.closed };
}

/** Status and headers of a write that was published. */
export function written(
  record: StreamRecord,
  request: AppendRequest,
  hasData: boolean,
): { status: number; headers: Record<string, string> } {
  const { producer } = request;
  return {
    status: producer !== undefined && hasData ? 200 : 204,
    headers: {
      'Stream-Next-Offset': formatOffset(record.tail),
      ...(record.closed ? { 'Stream-Closed': 'true' } : {}),
      ...(producer === undefined ? {} : producerHeaders(producer.epoch, producer.seq)),
    },
  };
}

function producerHeaders(epoch: number, seq: number): Record<string, string> {
  return { 'Producer-Epoch': String(epoch), 'Producer-Seq': String(seq) };
}

function sameProducerWrite(a: Producer | undefined, b: Producer): boolean {
  return a !== undefined && a.id === b.id && a.epoch === b.epoch && a.seq === b.seq;
}

/**
 * Byte-wise comparison, as the protocol orders `Stream-Seq` values. Node hands header values over
 * as latin1 text, one character per byte, so their latin1 bytes are the bytes that were sent.
 */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1'));
}
