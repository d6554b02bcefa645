/** Three `herald serve` processes on the shared Redis (a prefix of their own): see scenarios.ts. */
import { clusterScenarios } from './scenarios.ts';

clusterScenarios('redis');
