/** Test cleanup on the local NATS: the KV buckets a test run created. */
import { connect } from 'nats';

/** Deletes the KV buckets named `prefix` or `prefix_...` (a push store's expiring buckets). */
export async function deleteNatsBuckets(prefix: string): Promise<void> {
  const nc = await connect({ servers: '127.0.0.1:4222' });
  try {
    const jsm = await nc.jetstreamManager();
    const doomed: string[] = [];
    for await (const stream of jsm.streams.names()) {
      if (stream === `KV_${prefix}` || stream.startsWith(`KV_${prefix}_`)) doomed.push(stream);
    }
    for (const stream of doomed) await jsm.streams.delete(stream);
  } finally {
    await nc.close();
  }
}
