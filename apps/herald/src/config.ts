/**
 * Configuration: defaults, then an optional JSON or YAML file, then the environment (which wins).
 * Every setting is validated with zod; the first bad one stops the start with one plain sentence
 * that names it as the user wrote it (the environment variable or the file key) and says what it
 * must be. A value is never echoed: several settings are secrets, and a broker URL may hold one.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65_535);
const count = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const httpUrl = z.string().regex(/^https?:\/\/\S+$/, 'must be an http(s) URL');
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
/** Worker processes: a whole number, or `auto` for one per core. */
const workers = z.preprocess(
  (v) => (v === 'auto' ? availableParallelism() : v),
  z.coerce
    .number({ error: 'must be a whole number from 1 to 256, or auto (one per core)' })
    .int({ error: 'must be a whole number from 1 to 256, or auto (one per core)' })
    .min(1, { error: 'must be a whole number from 1 to 256, or auto (one per core)' })
    .max(256, { error: 'must be a whole number from 1 to 256, or auto (one per core)' }),
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
/** A setting given as JSON text (from the environment) parsed; anything else, or text that is not JSON, as it is, for the schema to refuse. */
function parsedJson(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v;
  }
}

/**
 * The `integrations` section (docs/integrations.md), or HERALD_INTEGRATIONS as JSON. Its shape is
 * checked here; @herald/integrations checks every key in depth before the hub listens.
 */
const integrations = z.preprocess(
  parsedJson,
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

/**
 * The Pusher apps (docs/pusher.md): `pusherApps` in the file, or HERALD_PUSHER_APPS as JSON, a
 * list of `{id, key, secret}` (and the optional flags). @herald/transport-pusher checks each in depth.
 */
const pusherApps = z.preprocess(
  parsedJson,
  z
    .array(
      z
        .object({
          id: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be 1 to 32 of A-Z a-z 0-9 _ -'),
          key: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 of A-Z a-z 0-9 _ -'),
          secret: z.string().min(8, 'must be at least 8 characters'),
          clientEvents: z.boolean().optional(),
          subscriptionCount: z.boolean().optional(),
          webhooks: z
            .object({ url: z.string(), events: z.array(z.string()).optional() })
            .strict()
            .optional(),
        })
        .strict(),
      { error: 'must be a JSON list of {"id", "key", "secret"}' },
    )
    .min(1),
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
  /** PEM public key, JWK or JWK set, as text or the path of a file holding it (docs/configuration.md). */
  jwtPublicKey: { env: 'HERALD_JWT_PUBLIC_KEY', schema: z.string().min(1) },
  jwksUrl: { env: 'HERALD_JWKS_URL', schema: httpUrl },
  jwksCacheTtl: { env: 'HERALD_JWKS_CACHE_TTL', schema: count(1, 86_400) },
  jwksCooldown: { env: 'HERALD_JWKS_COOLDOWN', schema: count(0, 86_400) },
  jwtLeeway: { env: 'HERALD_JWT_LEEWAY', schema: count(0, 60) },
  /** Seconds a token may be used after its `iat` (0 = no limit); bounds how long revocations are kept. */
  jwtMaxLifetime: { env: 'HERALD_JWT_MAX_LIFETIME', schema: count(0, 366 * 86_400) },
  jwtAudience: { env: 'HERALD_JWT_AUDIENCE', schema: z.string().min(1) },
  jwtIssuer: { env: 'HERALD_JWT_ISSUER', schema: z.string().min(1) },
  anonymousChannels: { env: 'HERALD_ANONYMOUS_CHANNELS', schema: list },
  origins: { env: 'HERALD_ORIGINS', schema: list },
  broker: { env: 'HERALD_BROKER', schema: brokerUrl },
  /** Hub processes sharing the port (docs/scale-out.md, "Every core"); auto = one per core. Default 1. */
  workers: { env: 'HERALD_WORKERS', schema: workers },
  historySize: { env: 'HERALD_HISTORY_SIZE', schema: count(0, 1_000_000) },
  historyTtl: { env: 'HERALD_HISTORY_TTL', schema: count(1, 31 * 86_400) },
  /** Redis/NATS: seconds a dead node's clients stay in presence at most (docs/scale-out.md). */
  presenceTtl: { env: 'HERALD_PRESENCE_TTL', schema: count(1, 3600) },
  maxMessageBytes: { env: 'HERALD_MAX_MESSAGE_BYTES', schema: count(1, 64 * 1_048_576) },
  maxQueueBytes: { env: 'HERALD_MAX_QUEUE_BYTES', schema: count(1024, 1_073_741_824) },
  pingInterval: { env: 'HERALD_PING_INTERVAL', schema: count(1, 3600) },
  /** SIGTERM: the least ms the listener answers /readyz 503 before it closes (docs/deployment.md). */
  drainReadiness: { env: 'HERALD_DRAIN_READINESS_MS', schema: count(0, 25_000) },
  /** The roll-up window of text-stream appends in ms, 0 = off (docs/streams.md). */
  streamWindow: { env: 'HERALD_STREAM_WINDOW_MS', schema: count(0, 10_000) },
  /** Server API: publications per /api/batch or /api/broadcast request, and their largest body. */
  maxBatchItems: { env: 'HERALD_MAX_BATCH_ITEMS', schema: count(1, 100_000) },
  maxBatchBodyBytes: { env: 'HERALD_MAX_BATCH_BODY_BYTES', schema: count(1024, 1_073_741_824) },
  /** Redis/NATS: publications waiting for the broker before 429, and ms the oldest may wait before 503. */
  publishQueueMax: { env: 'HERALD_PUBLISH_QUEUE_MAX', schema: count(1, 10_000_000) },
  publishQueueWait: { env: 'HERALD_PUBLISH_QUEUE_WAIT', schema: count(1, 600_000) },
  tokenCookie: { env: 'HERALD_TOKEN_COOKIE', schema: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) },
  /** This node's name in GET /api/info and /api/connections (default: host name, pid and a random tag). */
  node: { env: 'HERALD_NODE', schema: z.string().min(1).max(100) },
  /** Admission control (docs/reliability.md): 0 / rate 0 = off, the default. */
  maxConnectionsPerIp: { env: 'HERALD_MAX_CONNECTIONS_PER_IP', schema: count(0, 10_000_000) },
  connectionRatePerIp: { env: 'HERALD_CONNECTION_RATE_PER_IP', schema: rate },
  connectionRate: { env: 'HERALD_CONNECTION_RATE', schema: rate },
  maxConnectionsPerUser: { env: 'HERALD_MAX_CONNECTIONS_PER_USER', schema: count(0, 10_000_000) },
  /** Hooks that decide (docs/protocol-extensions.md): the backend's URL per hook, the signing secret. */
  hookConnectUrl: { env: 'HERALD_HOOK_CONNECT_URL', schema: httpUrl },
  hookSubscribeUrl: { env: 'HERALD_HOOK_SUBSCRIBE_URL', schema: httpUrl },
  hookPublishUrl: { env: 'HERALD_HOOK_PUBLISH_URL', schema: httpUrl },
  hookRefreshUrl: { env: 'HERALD_HOOK_REFRESH_URL', schema: httpUrl },
  hookRpcUrl: { env: 'HERALD_HOOK_RPC_URL', schema: httpUrl },
  hookSecret: { env: 'HERALD_HOOK_SECRET', schema: z.string().min(1) },
  /** Milliseconds each hook call may take (default 5000). */
  hookTimeout: { env: 'HERALD_HOOK_TIMEOUT_MS', schema: count(1, 600_000) },
  /** Request headers forwarded to the hooks (default cookie, authorization, x-forwarded-for). */
  hookForwardHeaders: { env: 'HERALD_HOOK_FORWARD_HEADERS', schema: list },
  admin: { env: 'HERALD_ADMIN', schema: flag },
  socketio: { env: 'HERALD_SOCKETIO', schema: flag },
  /** The Pusher protocol for these apps (docs/pusher.md); off when unset. */
  pusherApps: { env: 'HERALD_PUSHER_APPS', schema: pusherApps },
  /** Seconds of silence before a Pusher client is pinged (`activity_timeout`); default 120. */
  pusherActivityTimeout: { env: 'HERALD_PUSHER_ACTIVITY_TIMEOUT', schema: count(1, 3600) },
  logLevel: { env: 'HERALD_LOG_LEVEL', schema: logLevel },
  integrations: { env: 'HERALD_INTEGRATIONS', schema: integrations },
  /** PEM files: with both set the hub serves HTTPS with HTTP/2 (and HTTP/1.1 for upgrades). */
  tlsCert: { env: 'HERALD_TLS_CERT', schema: z.string().min(1) },
  tlsKey: { env: 'HERALD_TLS_KEY', schema: z.string().min(1) },
  /** The demo token endpoint; default on only for a dev instance: both secrets generated, listening on loopback. */
  demo: { env: 'HERALD_DEMO', schema: flag },
  /** Durable Streams under /ds/ (docs/durable-streams.md): on (Herald's credentials), off, or open (no auth). */
  durableStreams: {
    env: 'HERALD_DURABLE_STREAMS',
    schema: z.preprocess(
      (v) => (v === true || v === 'true' || v === '1' ? 'on' : v === false || v === 'false' || v === '0' ? 'off' : v),
      z.enum(['on', 'off', 'open'], { error: 'must be on, off or open' }),
    ),
  },
  /** Seconds a Durable Streams long-poll waits before it answers 204 (fractions allowed). */
  durableStreamsLongPoll: { env: 'HERALD_DURABLE_STREAMS_LONG_POLL', schema: z.coerce.number().min(0.1).max(55) },
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
      throw new ConfigError(`Invalid configuration: ${where} ${plainProblem(parsed.error.issues[0])}.`);
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
  const yaml = /\.ya?ml$/i.test(file);
  let value: unknown;
  try {
    value = yaml ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    // The parsers' messages quote the text around the fault, which may be a secret: say where only.
    throw new ConfigError(`The config file ${file} is not valid ${yaml ? 'YAML' : 'JSON'}${faultAt(text, error)}.`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`The config file ${file} must hold an object of settings.`);
  }
  return value as Record<string, unknown>;
}

/**
 * What a value must be, from zod's first issue, as the end of a plain sentence: zod's own wording
 * ("Too big: expected number to be <=60") reads like library output. Schemas with a message of
 * their own ("must be ...") keep it.
 */
function plainProblem(issue: z.core.$ZodIssue | undefined): string {
  if (issue === undefined) return 'is not valid';
  const at = issue.path.length > 0 ? ` (at ${issue.path.join('.')})` : '';
  if (issue.message.startsWith('must ')) return `${issue.message}${at}`;
  switch (issue.code) {
    case 'invalid_type':
      return `must be ${TYPE_WORDS[issue.expected] ?? `a ${issue.expected}`}${at}`;
    case 'too_big':
      return `must be at most ${String(issue.maximum)}${issue.origin === 'string' ? ' characters long' : ''}${at}`;
    case 'too_small':
      return `must be at least ${String(issue.minimum)}${issue.origin === 'string' ? ' characters long' : ''}${at}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map(String).join(', ')}${at}`;
    case 'unrecognized_keys':
      return `has an unknown key "${issue.keys[0] ?? ''}"${at}`;
    default:
      return `is not valid${at}`;
  }
}

const TYPE_WORDS: Record<string, string> = {
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  string: 'text',
  array: 'a list',
  object: 'an object',
  record: 'an object',
};

/** " (line L, column C)" of a YAML or JSON parse error, when the parser says where; else "". */
function faultAt(text: string, error: unknown): string {
  const linePos = (error as { linePos?: Array<{ line: number; col: number }> }).linePos?.[0];
  if (linePos !== undefined) return ` (line ${linePos.line}, column ${linePos.col})`;
  const position = /position (\d+)/.exec((error as Error).message)?.[1];
  if (position === undefined) return '';
  const before = text.slice(0, Number(position)).split('\n');
  return ` (line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1})`;
}

/** The environment variable of every setting, for `--help` and the docs. */
export function settingNames(): Array<{ key: string; env: string }> {
  return Object.entries(SETTINGS).map(([key, { env }]) => ({ key, env }));
}
