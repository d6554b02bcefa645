/**
 * Configuration: defaults, then an optional JSON or YAML file, then the environment (which wins).
 * Every setting is validated with zod; the first bad one stops the start with one sentence that
 * names it as the user wrote it (the environment variable or the file key).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65_535);
const count = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const list = z.preprocess(
  (v) =>
    typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s.length > 0)
      : v,
  z.array(z.string().min(1)),
);
const brokerUrl = z
  .string()
  .regex(
    /^(memory|redis:\/\/\S+|rediss:\/\/\S+|nats:\/\/\S+)$/,
    'must be memory, redis://host:port or nats://host:port',
  );
const flag = z.preprocess(
  (v) => (v === 'false' || v === '0' ? false : v === 'true' || v === '1' ? true : v),
  z.boolean(),
);
const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
/** A token-bucket rate: `RATE` or `RATE:BURST` (per second; burst defaults to the rate), or {perSecond, burst}. */
const rate = z.preprocess(
  (v) => {
    if (typeof v !== 'string') return v;
    const m = /^\s*(\d+(?:\.\d+)?)\s*(?::\s*(\d+)\s*)?$/.exec(v);
    if (m === null) return v;
    const perSecond = Number(m[1]);
    return { perSecond, burst: m[2] === undefined ? Math.max(1, Math.ceil(perSecond)) : Number(m[2]) };
  },
  z.object(
    { perSecond: z.number().min(0).max(1_000_000), burst: z.number().int().min(0).max(10_000_000) },
    {
      error: 'must be RATE or RATE:BURST (per second), e.g. 200:400',
    },
  ),
);
/**
 * The `integrations` section (docs/integrations.md), or HERALD_INTEGRATIONS as JSON. Its shape is
 * checked here; @herald/integrations checks every key in depth before the hub listens.
 */
const integrations = z.preprocess(
  (v) => {
    if (typeof v !== 'string') return v;
    try {
      return JSON.parse(v) as unknown;
    } catch {
      return v;
    }
  },
  z
    .object({
      registry: z.string().optional(),
      namespace: z.string().optional(),
      nodeTtl: z.number().optional(),
      sweepInterval: z.number().optional(),
      webhooks: z.record(z.string(), z.unknown()).optional(),
      push: z.record(z.string(), z.unknown()).optional(),
      bridges: z.array(z.record(z.string(), z.unknown())).optional(),
    })
    .strict(),
);

/** One row per setting: its key in a config file, its environment variable, its schema. */
const SETTINGS = {
  port: { env: 'PORT', schema: port },
  host: { env: 'HOST', schema: z.string().min(1) },
  apiKey: { env: 'HERALD_API_KEY', schema: z.string().min(16, 'must be at least 16 characters') },
  jwtSecret: {
    env: 'HERALD_JWT_SECRET',
    schema: z.string().min(32, 'must be at least 32 characters (HS256 needs 256 bits)'),
  },
  jwtLeeway: { env: 'HERALD_JWT_LEEWAY', schema: count(0, 60) },
  jwtAudience: { env: 'HERALD_JWT_AUDIENCE', schema: z.string().min(1) },
  jwtIssuer: { env: 'HERALD_JWT_ISSUER', schema: z.string().min(1) },
  anonymousChannels: { env: 'HERALD_ANONYMOUS_CHANNELS', schema: list },
  origins: { env: 'HERALD_ORIGINS', schema: list },
  broker: { env: 'HERALD_BROKER', schema: brokerUrl },
  historySize: { env: 'HERALD_HISTORY_SIZE', schema: count(0, 1_000_000) },
  historyTtl: { env: 'HERALD_HISTORY_TTL', schema: count(1, 31 * 86_400) },
  /** Redis/NATS: seconds a dead node's clients stay in presence at most (docs/scale-out.md). */
  presenceTtl: { env: 'HERALD_PRESENCE_TTL', schema: count(1, 3600) },
  maxMessageBytes: { env: 'HERALD_MAX_MESSAGE_BYTES', schema: count(1, 64 * 1_048_576) },
  maxQueueBytes: { env: 'HERALD_MAX_QUEUE_BYTES', schema: count(1024, 1_073_741_824) },
  pingInterval: { env: 'HERALD_PING_INTERVAL', schema: count(1, 3600) },
  tokenCookie: { env: 'HERALD_TOKEN_COOKIE', schema: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) },
  /** Admission control (docs/reliability.md): 0 / rate 0 = off, the default. */
  maxConnectionsPerIp: { env: 'HERALD_MAX_CONNECTIONS_PER_IP', schema: count(0, 10_000_000) },
  connectionRatePerIp: { env: 'HERALD_CONNECTION_RATE_PER_IP', schema: rate },
  connectionRate: { env: 'HERALD_CONNECTION_RATE', schema: rate },
  maxConnectionsPerUser: { env: 'HERALD_MAX_CONNECTIONS_PER_USER', schema: count(0, 10_000_000) },
  admin: { env: 'HERALD_ADMIN', schema: flag },
  socketio: { env: 'HERALD_SOCKETIO', schema: flag },
  logLevel: { env: 'HERALD_LOG_LEVEL', schema: logLevel },
  integrations: { env: 'HERALD_INTEGRATIONS', schema: integrations },
  /** PEM files: with both set the hub serves HTTPS with HTTP/2 (and HTTP/1.1 for upgrades). */
  tlsCert: { env: 'HERALD_TLS_CERT', schema: z.string().min(1) },
  tlsKey: { env: 'HERALD_TLS_KEY', schema: z.string().min(1) },
  /** The demo token endpoint; default on only when the JWT secret was generated (a dev instance). */
  demo: { env: 'HERALD_DEMO', schema: flag },
} as const;

type Settings = typeof SETTINGS;
export type Config = { -readonly [K in keyof Settings]?: z.output<Settings[K]['schema']> };

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function loadConfig(env: NodeJS.ProcessEnv, file: string | undefined): Config {
  const fromFile = file === undefined ? {} : readConfigFile(file);
  const unknown = Object.keys(fromFile).filter((key) => !Object.hasOwn(SETTINGS, key));
  if (unknown.length > 0) {
    throw new ConfigError(`Unknown key "${unknown[0]}" in ${file}; known keys: ${Object.keys(SETTINGS).join(', ')}.`);
  }
  const config: Record<string, unknown> = {};
  for (const [key, { env: name, schema }] of Object.entries(SETTINGS)) {
    const envValue = env[name];
    const fromEnv = envValue !== undefined && envValue !== '';
    const raw = fromEnv ? envValue : (fromFile as Record<string, unknown>)[key];
    if (raw === undefined) continue;
    const parsed = (schema as z.ZodType).safeParse(raw);
    if (!parsed.success) {
      const where = fromEnv ? `environment variable ${name}` : `"${key}" in ${file}`;
      const problem = parsed.error.issues[0]?.message ?? 'is not valid';
      throw new ConfigError(
        `Invalid configuration: ${where} ${problem.replace(/^Invalid input: /, '')} (got ${JSON.stringify(raw)}).`,
      );
    }
    config[key] = parsed.data;
  }
  return config as Config;
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new ConfigError(`Cannot read the config file ${file}.`);
  }
  let value: unknown;
  try {
    value = /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    throw new ConfigError(
      `The config file ${file} is not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${(error as Error).message.split('\n')[0]}`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`The config file ${file} must hold an object of settings.`);
  }
  return value as Record<string, unknown>;
}

/** The environment variable of every setting, for `--help` and the docs. */
export function settingNames(): Array<{ key: string; env: string }> {
  return Object.entries(SETTINGS).map(([key, { env }]) => ({ key, env }));
}
