/**
 * Small checks for the integrations' options (fastify style: validated once at start, the error
 * names the key as the user wrote it, e.g. `integrations.webhooks.url`). Throws the hub's
 * OptionsError, which the `herald` command turns into one sentence and exit code 2.
 */
import { OptionsError } from '@herald/server';

export type Obj = Readonly<Record<string, unknown>>;

export function fail(path: string, problem: string): never {
  throw new OptionsError(path, problem);
}

/** A plain object with only `keys`; undefined stays undefined. */
export function object(value: unknown, path: string, keys: readonly string[]): Obj | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'must be an object');
  const unknown = Object.keys(value).find((k) => !keys.includes(k));
  if (unknown !== undefined) fail(`${path}.${unknown}`, `is not a known key (known: ${keys.join(', ')})`);
  return value as Obj;
}

export function string(
  value: unknown,
  path: string,
  check?: { pattern?: RegExp; min?: number; max?: number; describe?: string },
): string | undefined {
  if (value === undefined) return undefined;
  const ok =
    typeof value === 'string' &&
    value.length >= (check?.min ?? 1) &&
    value.length <= (check?.max ?? 10_000) &&
    (check?.pattern?.test(value) ?? true);
  if (!ok) fail(path, `must be ${check?.describe ?? 'a non-empty string'}`);
  return value as string;
}

export function number(
  value: unknown,
  path: string,
  min: number,
  max: number,
  options: { integer?: boolean } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    value >= min &&
    value <= max &&
    (!options.integer || Number.isInteger(value));
  if (!ok) fail(path, `must be ${options.integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
  return value as number;
}

export function boolean(value: unknown, path: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') fail(path, 'must be true or false');
  return value;
}

export function oneOf<T extends string>(value: unknown, path: string, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!choices.includes(value as T)) fail(path, `must be one of ${choices.join(', ')}`);
  return value as T;
}

export function array(
  value: unknown,
  path: string,
  options: { min?: number; max?: number } = {},
): unknown[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length < (options.min ?? 0) || value.length > (options.max ?? 10_000)) {
    fail(path, `must be a list of ${options.min ?? 0} to ${options.max ?? 10_000} items`);
  }
  return value;
}

export function strings(value: unknown, path: string, check?: Parameters<typeof string>[2]): string[] | undefined {
  return array(value, path)?.map((v, i) => string(v, `${path}[${i}]`, check) as string);
}

/** Runs `compile` and reports what it throws against `path`. */
export function compiled<T>(path: string, compile: () => T): T {
  try {
    return compile();
  } catch (error) {
    return fail(path, (error as Error).message);
  }
}
