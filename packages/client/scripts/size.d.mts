export const BUDGET_BYTES: number;
/** Sizes in bytes of the browser bundle, minified and gzipped. */
export function bundleSize(): Promise<{ minified: number; gzipped: number }>;
