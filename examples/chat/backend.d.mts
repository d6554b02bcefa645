/** Types of backend.mjs, for the tests that start it. */
export declare const ROOMS: readonly string[];
export declare function startChatBackend(options: {
  readonly port?: number;
  readonly host?: string;
  readonly secret: string;
}): Promise<{ readonly url: string; close(): Promise<void> }>;
