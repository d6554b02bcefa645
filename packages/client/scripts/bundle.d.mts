export const MINIFIED: string;
export const PUBLIC_COPY: string;
export const OUTPUTS: readonly string[];
/** Resolves to the minified ESM browser bundle's text. */
export function bundle(): Promise<string>;
