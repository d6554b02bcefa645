/**
 * Test support for the `herald` command: runs the real binary (apps/herald/bin/herald.js, built
 * from apps/herald/src by `npm run build`) as a child process and collects everything it prints.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const HERALD_BIN = fileURLToPath(new URL('../../apps/herald/bin/herald.js', import.meta.url));

export interface HeraldProcess {
  readonly child: ChildProcess;
  /** stdout and stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal name) once the process ended. */
  readonly exited: Promise<number | string>;
  /** Resolves with the base URL from the banner ("listening on ..."), rejects if the process ends first. */
  readonly listening: Promise<string>;
  /** Kills the process if it is still running. */
  kill(): void;
}

/** Environment for a child hub: the parent's PATH only, nothing from the developer's HERALD_* vars. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_OPTIONS: '', ...extra };
}

export function runHerald(args: readonly string[], env: Record<string, string> = {}): HeraldProcess {
  const child = spawn(process.execPath, [HERALD_BIN, ...args], {
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const listening = new Promise<string>((resolve, reject) => {
    const check = (): void => {
      const match = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (match) {
        child.stdout?.off('data', check);
        resolve(match[1] as string);
      }
    };
    child.stdout?.on('data', check);
    void exited.then((code) => reject(new Error(`herald exited (${code}) before listening: ${err || out}`)));
  });
  listening.catch(() => undefined);
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    listening,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
