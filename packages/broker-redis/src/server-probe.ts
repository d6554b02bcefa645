/**
 * Which Redis a connection reached, and whether it keeps everything it acknowledged across a
 * restart. The scripts compare this with what each channel's metadata recorded at its last
 * write, so that a Redis that came back with less than it acknowledged (a snapshot, an AOF
 * without fsync, an empty start) gets new epochs instead of offsets that name two publications.
 */
import type { Redis } from 'ioredis';

export interface RedisServerIdentity {
  /** `run_id` from INFO: a new one at every start of redis-server. */
  readonly runId: string;
  /**
   * `appendonly yes` with `appendfsync always`: every write is fsynced before Redis answers, so a
   * restart (even a crash) brings back everything it acknowledged. Undefined when CONFIG is not
   * allowed (managed services, ACLs); treated as not durable.
   */
  readonly fsyncsEveryWrite: boolean | undefined;
}

export async function probeServer(redis: Redis): Promise<RedisServerIdentity> {
  const info = await redis.info('server');
  const runId = /^run_id:([0-9a-f]+)\s*$/m.exec(info)?.[1];
  if (runId === undefined) throw new Error('redis INFO server has no run_id');
  let fsyncsEveryWrite: boolean | undefined;
  try {
    // One pattern rather than two names: CONFIG GET takes several names only since Redis 7.
    const pairs = (await redis.call('CONFIG', 'GET', 'append*')) as string[];
    const config = new Map<string, string>();
    for (let i = 0; i + 1 < pairs.length; i += 2) config.set(String(pairs[i]), String(pairs[i + 1]));
    fsyncsEveryWrite = config.get('appendonly') === 'yes' && config.get('appendfsync') === 'always';
  } catch {
    fsyncsEveryWrite = undefined;
  }
  return { runId, fsyncsEveryWrite };
}

/**
 * What the scripts store as a channel's `run`: `*` when the Redis keeps every acknowledged write
 * (the channel survives its restarts), otherwise its run id (the channel is trusted only until
 * that Redis restarts).
 */
export function runMark(server: RedisServerIdentity): string {
  return server.fsyncsEveryWrite === true ? '*' : server.runId;
}
