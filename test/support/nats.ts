/** Test support for the shared NATS (127.0.0.1:4222): tests work under a namespace of their own. */
import { connect } from 'nats';

/** Deletes the JetStream streams and KV buckets of a broker namespace (names as docs/scale-out.md lists them). */
export async function deleteNatsNamespace(url: string, prefix: string): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await nc.jetstreamManager();
    for (const stream of [
      `${prefix}_history`,
      `KV_${prefix}_epochs`,
      `KV_${prefix}_idem`,
      `KV_${prefix}_presence`,
      `KV_${prefix}_revocations`,
      `KV_${prefix}_meta`,
    ]) {
      await jsm.streams.delete(stream).catch(() => undefined);
    }
  } finally {
    await nc.close();
  }
}
