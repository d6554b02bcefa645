/**
 * The broker conformance suite against the local broker: one host (as the primary of
 * `herald serve --workers N` runs it) and two worker nodes on its unix socket, each with its own link.
 */
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brokerConformance } from '../../../test/support/broker-conformance.ts';
import { LocalBrokerHost, createLocalBackend } from '../src/index.ts';

brokerConformance({
  name: 'local',
  multiNode: true,
  available: async () => true,
  async create(limits, count) {
    const host = new LocalBrokerHost({
      ...limits,
      path: join(tmpdir(), `herald-test-${randomBytes(6).toString('hex')}.sock`),
    });
    await host.start();
    const nodes = [];
    for (let i = 0; i < count; i++) nodes.push(createLocalBackend(host.path));
    return { nodes, cleanup: () => host.close() };
  },
});
