/**
 * The child side of the bench's control channel: requests arrive over the IPC channel as
 * `{id, cmd, ...}` and are answered once with `{id, ok, ...}`. A child whose parent goes away
 * (the channel disconnects) exits at once, so no bench process outlives the run.
 */
import { readFileSync } from 'node:fs';
import { procNumber } from './proc-tree.js';

export interface Request {
  readonly id: number;
  readonly cmd: string;
  readonly [key: string]: unknown;
}

export type Handler = (request: Request) => Promise<object> | object;

export function serveRpc(handler: Handler): void {
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: Request) => {
    if (message.cmd === 'exit') process.exit(0);
    void (async () => {
      try {
        const answer = await handler(message);
        process.send?.({ id: message.id, ok: true, ...answer });
      } catch (error) {
        process.send?.({ id: message.id, ok: false, error: error instanceof Error ? error.message : String(error) });
      }
    })();
  });
}

/** The soft limit on open files this process got (Linux `/proc/self/limits`), or -1. */
export function fdLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s+/)[3];
    return soft === undefined ? -1 : soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft);
  } catch {
    return -1;
  }
}

/** Memory after full collections; needs `--expose-gc`. */
export async function memoryAfterGc(): Promise<NodeJS.MemoryUsage> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('the server process needs --expose-gc');
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage();
}

/** Write-family syscalls this process made so far (Linux `/proc/self/io` `syscw`), or -1. */
export function writeSyscalls(): number {
  try {
    return procNumber('self', 'io', 'syscw') ?? -1;
  } catch {
    return -1;
  }
}
