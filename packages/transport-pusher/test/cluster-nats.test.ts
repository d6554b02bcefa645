/** Pusher on two hub processes over NATS: see cluster-scenarios.ts. */
import { pusherClusterScenarios } from './cluster-scenarios.ts';

pusherClusterScenarios('nats');
