/** Pusher on two hub processes over Redis: see cluster-scenarios.ts. */
import { pusherClusterScenarios } from './cluster-scenarios.ts';

pusherClusterScenarios('redis');
