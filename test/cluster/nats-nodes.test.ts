/** Three `herald serve` processes on the shared Nats (a prefix of their own): see scenarios.ts. */
import { clusterScenarios } from './scenarios.ts';

clusterScenarios('nats');
