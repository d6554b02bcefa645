import { conformance } from './suite.mjs';

conformance('herald-redis');
