/** The broker conformance suite against the embedded memory broker (one node: nothing to share). */
import { brokerConformance } from '../../../test/support/broker-conformance.ts';
import { MemoryBroker, MemoryPresence } from '../src/index.ts';

brokerConformance({
  name: 'memory',
  multiNode: false,
  available: async () => true,
  create: async (limits) => ({
    nodes: [{ broker: new MemoryBroker(limits), presence: new MemoryPresence() }],
    cleanup: async () => undefined,
  }),
});
