/**
 * The broker conformance suite against NATS JetStream (127.0.0.1:4222, shared with other tests):
 * every case runs two nodes in a namespace of its own (stream, buckets, subjects) and deletes its
 * stream and buckets afterwards.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'nats';
import { brokerConformance } from '../../../test/support/broker-conformance.ts';
import { requireService } from '../../../test/support/services.ts';
import { NatsNames, createNatsBackend } from '../src/index.ts';

const URL = 'nats://127.0.0.1:4222';

brokerConformance({
  name: 'nats',
  multiNode: true,
  available: (t) => requireService(t, 'nats'),
  async create(history, count) {
    const prefix = `ht_${randomBytes(6).toString('hex')}`;
    const nodes = [];
    // Memory storage: nothing of these short-lived namespaces needs to survive a restart.
    for (let i = 0; i < count; i++)
      nodes.push(await createNatsBackend({ url: URL, history, prefix, storage: 'memory' }));
    return { nodes, cleanup: () => deleteNamespace(new NatsNames(prefix)) };
  },
});

async function deleteNamespace(names: NatsNames): Promise<void> {
  const nc = await connect({ servers: URL });
  try {
    const jsm = await nc.jetstreamManager();
    for (const stream of [names.stream, `KV_${names.epochs}`, `KV_${names.idempotency}`, `KV_${names.presence}`]) {
      await jsm.streams.delete(stream).catch(() => undefined);
    }
  } finally {
    await nc.close();
  }
}
