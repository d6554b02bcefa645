import { conformance } from './suite.mjs';

conformance('reference');
