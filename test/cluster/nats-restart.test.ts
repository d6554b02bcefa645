/** The Nats server restarts under load (a private instance on a spare port): see scenarios.ts. */
import { brokerRestartScenario } from './scenarios.ts';

brokerRestartScenario('nats');
