/**
 * The `herald` command: `serve` (the default), `token`, `bench`. Configuration errors end the
 * process with one sentence and exit code 2; nothing else is printed to confuse the user.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { attachDurableStreams } from '@herald/durable-streams';
import { resolveIntegrationsOptions, startIntegrations } from '@herald/integrations';
import {
  HeraldServer,
  OptionsError,
  PublicKeyError,
  parsePublicKeys,
  type HistoryLimits,
  type HooksOptions,
} from '@herald/server';
import { attachPusher } from '@herald/transport-pusher';
import { attachSocketIo } from '@herald/transport-socketio';
import { pino, type Logger } from 'pino';
import { createBackend, redactUrl } from './backend.js';
import { ConfigError, loadConfig, settingNames, type Config } from './config.js';
import { pages } from './pages.js';
import { mintToken } from './token.js';
import {
  DRAIN_DEADLINE_MS,
  DRAIN_READINESS_MS,
  LOCAL_BROKER_ENV,
  clusterMetrics,
  isWorker,
  onPrimaryGone,
  reportListening,
  startPrimary,
} from './workers.js';
import { SharedAdmission, admissionOptions } from './shared-admission.js';

const HELP = `herald: one real-time hub, every transport (WebSocket, SSE, long-polling, Socket.IO)

Usage:
  herald [serve] [--config FILE] [--workers N|auto]
                                      start the hub (the default command); --workers: N hub
                                      processes on one port, auto = one per core (HERALD_WORKERS)
  herald token --sub USER [--channel PATTERN]... [--publish PATTERN]... [--ttl SECONDS] [--info JSON]
                                      print a client JWT signed with HERALD_JWT_SECRET
                                      (--ttl 0: no expiry; --ttl=-60: expired a minute ago, for tests)
  herald bench [--quick] [...]        measure transports side by side (see docs/benchmarks.md)
  herald --help | --version

Configuration comes from the environment, optionally from a JSON or YAML file
(--config FILE or HERALD_CONFIG); the environment wins. Settings:
${settingNames()
  .map(({ key, env }) => `  ${env.padEnd(28)} (file key: ${key})`)
  .join('\n')}
`;

export async function main(argv: readonly string[]): Promise<number | undefined> {
  const [first, ...rest] = argv;
  const command = first === undefined || first.startsWith('-') ? 'serve' : first;
  const args = command === first ? rest : argv;
  // `herald bench --help` is the bench's own help (its options), not the hub's.
  if (command !== 'bench' && (args.includes('--help') || args.includes('-h') || command === 'help')) {
    process.stdout.write(HELP);
    return 0;
  }
  if (args.includes('--version')) {
    process.stdout.write('herald 0.1.0\n');
    return 0;
  }
  try {
    switch (command) {
      case 'serve':
        return await serve(args);
      case 'token':
        return await token(args);
      case 'bench': {
        const { runBenchCli } = await import('@herald/bench');
        return await runBenchCli(args);
      }
      default:
        process.stderr.write(`herald: unknown command "${command}". Try herald --help.\n`);
        return 2;
    }
  } catch (error) {
    if (error instanceof ConfigError || error instanceof OptionsError) {
      process.stderr.write(`herald: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

function configFrom(args: readonly string[]): Config {
  const { values } = options({
    args: [...args],
    options: { config: { type: 'string' }, workers: { type: 'string' } },
    strict: true,
  });
  // --workers wins over HERALD_WORKERS and the file, and is checked by the same rule.
  const env = values.workers === undefined ? process.env : { ...process.env, HERALD_WORKERS: values.workers };
  return loadConfig(env, values.config ?? process.env.HERALD_CONFIG);
}

/**
 * `parseArgs`, with its refusals as one plain sentence that names the option and never echoes a
 * value (a value may be a secret).
 */
function options<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    const option = /'(-[^' ]+)/.exec(message)?.[1] ?? 'an option';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new ConfigError(`unknown option ${option}. Try herald --help.`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      throw new ConfigError(`option ${option} needs a value (a value starting with "-" goes as ${option}=VALUE).`);
    }
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      throw new ConfigError('this command takes options only, no other arguments. Try herald --help.');
    }
    throw error;
  }
}

async function serve(args: readonly string[]): Promise<number | undefined> {
  const config = configFrom(args);
  const workers = config.workers ?? 1;
  if (isWorker()) return serveHub(config, settle(config, false));
  const settled = settle(config, true);
  if (workers === 1) return serveHub(config, settled);
  return servePrimary(config, settled, workers);
}

/** What every process of one `herald serve` must agree on, decided once (in the primary). */
interface Settled {
  readonly tls: { cert: Buffer; key: Buffer } | undefined;
  readonly jwtPublicKey: string | undefined;
  readonly generated: { apiKey: boolean; jwtSecret: boolean };
  readonly apiKey: string;
  readonly jwtSecret: string;
  readonly leeway: number;
  readonly maxLifetime: number;
  readonly host: string;
  readonly port: number;
  readonly logger: Logger;
  readonly demo: boolean;
  readonly brokerUrl: string;
  readonly history: HistoryLimits;
}

function settle(config: Config, warn: boolean): Settled {
  const tls = tlsFiles(config);
  const jwtPublicKey = config.jwtPublicKey === undefined ? undefined : publicKeyText(config.jwtPublicKey);
  const publicKeys = jwtPublicKey !== undefined || config.jwksUrl !== undefined;
  // With public keys and no secret nobody mints HS256 tokens but the hub's own pages (the admin
  // page's stream token), so no secret is generated or printed (docs/configuration.md).
  const generated = { apiKey: config.apiKey === undefined, jwtSecret: config.jwtSecret === undefined && !publicKeys };
  const apiKey = config.apiKey ?? randomBytes(24).toString('base64url');
  const jwtSecret = config.jwtSecret ?? (publicKeys ? pageSecret(apiKey) : randomBytes(32).toString('base64url'));
  const leeway = config.jwtLeeway ?? 0;
  const maxLifetime = config.jwtMaxLifetime ?? 0;
  // Without configured credentials the hub is a development instance: keep it off the network.
  const host = config.host ?? (generated.apiKey && generated.jwtSecret ? '127.0.0.1' : '0.0.0.0');
  const port = config.port ?? 8080;
  const logger = pino({
    level: config.logLevel ?? 'info',
    base: { service: 'herald', ...(isWorker() ? { worker: process.pid } : {}) },
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'token', 'apiKey', 'jwtSecret'],
      censor: '[redacted]',
    },
  });
  // The demo token endpoint hands anyone who reaches it a token. On by default only for a
  // development instance: both secrets generated and nothing but this machine can connect. The
  // client's address cannot decide it: behind a reverse proxy on this host every client is loopback.
  const demo = config.demo ?? (generated.apiKey && generated.jwtSecret && isLoopback(host));
  if (warn && demo && !isLoopback(host)) {
    logger.warn({ host }, 'demo tokens are on and the hub is reachable from the network (HERALD_DEMO=true)');
  }
  const brokerUrl = config.broker ?? 'memory';
  // Checked before anything starts, so a bad integrations section ends with exit code 2.
  resolveIntegrationsOptions(config.integrations ?? {}, brokerUrl);
  const history = { size: config.historySize ?? 1000, ttlSeconds: config.historyTtl ?? 600 };
  return {
    tls,
    jwtPublicKey,
    generated,
    apiKey,
    jwtSecret,
    leeway,
    maxLifetime,
    host,
    port,
    logger,
    demo,
    brokerUrl,
    history,
  };
}

/**
 * The primary of `--workers N`: forks the workers with the settings they must share (the secrets
 * it generated, the host and demo decisions that depend on them), then prints the banner once.
 */
async function servePrimary(config: Config, s: Settled, workers: number): Promise<number | undefined> {
  // Integrations keep state of their own (outbox, registry) in the process on the embedded broker.
  if (s.brokerUrl === 'memory' && config.integrations !== undefined) {
    throw new ConfigError(
      'integrations with --workers need a shared broker (HERALD_BROKER=redis://... or nats://...); or run one worker.',
    );
  }
  const env: Record<string, string> = {
    HERALD_API_KEY: s.apiKey,
    HOST: s.host,
    PORT: String(s.port),
    HERALD_DEMO: String(s.demo),
  };
  // A secret derived from the API key (public keys configured) is derived again by each worker.
  if (s.generated.jwtSecret || config.jwtSecret !== undefined) env.HERALD_JWT_SECRET = s.jwtSecret;
  const address = await startPrimary({
    count: workers,
    localHistory: s.brokerUrl === 'memory' ? s.history : undefined,
    env,
    admission: admissionOptions(config),
    logger: s.logger,
  });
  const scheme = s.tls === undefined ? 'http' : 'https';
  s.logger.info(
    { address: `${scheme}://${hostPart(address.address)}:${address.port}`, broker: redactUrl(s.brokerUrl), workers },
    'herald listening',
  );
  process.stdout.write(await banner({ ...bannerAddresses(scheme, address), ...bannerSettings(s), workers }));
  return undefined;
}

async function serveHub(config: Config, s: Settled): Promise<number | undefined> {
  const { tls, jwtPublicKey, apiKey, jwtSecret, leeway, maxLifetime, host, port, logger, demo, brokerUrl, history } = s;
  const worker = isWorker();
  const localBroker = worker ? process.env[LOCAL_BROKER_ENV] : undefined;
  const backend = await createBackend(brokerUrl, history, logger, {
    presenceTtlSeconds: config.presenceTtl,
    // Every revocation stops mattering this long after it was stored (revocation.ts, revocationFor).
    revocationRetentionSeconds: maxLifetime === 0 ? 0 : maxLifetime + 2 * leeway + 120,
    publishQueue: {
      ...(config.publishQueueMax === undefined ? {} : { maxPending: config.publishQueueMax }),
      ...(config.publishQueueWait === undefined ? {} : { maxWaitMs: config.publishQueueWait }),
    },
    ...(localBroker === undefined ? {} : { localBroker }),
  });
  const site = pages({
    apiKey,
    jwtSecret,
    jwtAudience: config.jwtAudience,
    jwtIssuer: config.jwtIssuer,
    admin: config.admin ?? true,
    demo,
  });
  // Set once the server exists: a worker's /metrics answers for every worker (workers.ts).
  let sharedMetrics: (() => Promise<string>) | undefined;
  const server = new HeraldServer({
    apiKey,
    jwtSecret,
    jwtPublicKey,
    jwksUrl: config.jwksUrl,
    jwksCacheSeconds: config.jwksCacheTtl,
    jwksCooldownSeconds: config.jwksCooldown,
    jwtLeewaySeconds: leeway,
    jwtMaxLifetimeSeconds: maxLifetime,
    jwtAudience: config.jwtAudience,
    jwtIssuer: config.jwtIssuer,
    anonymousChannels: config.anonymousChannels,
    origins: config.origins,
    broker: backend.broker,
    presence: backend.presence,
    revocations: backend.revocations,
    historySize: history.size,
    historyTtlSeconds: history.ttlSeconds,
    maxMessageBytes: config.maxMessageBytes,
    maxQueueBytes: config.maxQueueBytes,
    streamWindowMs: config.streamWindow,
    maxBatchItems: config.maxBatchItems,
    maxBatchBodyBytes: config.maxBatchBodyBytes,
    pingIntervalSeconds: config.pingInterval,
    tokenCookie: config.tokenCookie,
    node: config.node,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    connectionRatePerIp: config.connectionRatePerIp,
    connectionRate: config.connectionRate,
    // A worker's limits are counted by the primary, for the whole machine (shared-admission.ts).
    ...(worker ? { admission: new SharedAdmission(admissionOptions(config)) } : {}),
    maxConnectionsPerUser: config.maxConnectionsPerUser,
    logger,
    routes: site.routes,
    tls,
    hooks: hooksOf(config),
    ...(worker ? { metricsText: () => (sharedMetrics as () => Promise<string>)() } : {}),
  });
  if (worker) sharedMetrics = clusterMetrics(server.metrics);
  // Socket.IO clients on /socket.io/ (docs/socketio.md); on unless HERALD_SOCKETIO=false.
  if (config.socketio ?? true) attachSocketIo(server);
  // The Pusher protocol for the apps of HERALD_PUSHER_APPS (docs/pusher.md).
  if (config.pusherApps !== undefined) {
    attachPusher(server, {
      apps: config.pusherApps,
      ...(config.pusherActivityTimeout === undefined ? {} : { activityTimeoutSeconds: config.pusherActivityTimeout }),
    });
  }
  // Durable Streams on /ds/ (docs/durable-streams.md); on unless HERALD_DURABLE_STREAMS=off.
  const durableStreams = config.durableStreams ?? 'on';
  if (durableStreams !== 'off') {
    attachDurableStreams(server, {
      access: durableStreams === 'open' ? 'open' : 'auth',
      ...(config.durableStreamsLongPoll === undefined ? {} : { longPollSeconds: config.durableStreamsLongPoll }),
    });
  }
  const address = await server.listen(port, host);
  site.attach(server);
  const integrations = await startIntegrations(server, config.integrations, { logger, brokerUrl }).catch(
    async (error: unknown) => {
      await server.drain();
      throw error;
    },
  );
  const scheme = tls === undefined ? 'http' : 'https';
  const base = `${scheme}://${hostPart(address.address)}:${address.port}`;

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining');
    // Never hang: a drain that cannot finish still ends the process.
    setTimeout(() => process.exit(1), DRAIN_DEADLINE_MS).unref();
    server
      .drain({ readinessMs: config.drainReadiness ?? DRAIN_READINESS_MS })
      .then(() => integrations.close())
      .then(
        () => {
          logger.info('stopped');
          process.exit(0);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'drain failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  if (worker) {
    // The primary prints the banner and says "listening" once every worker listens.
    onPrimaryGone(stop);
    reportListening({ address: address.address, port: address.port });
    return undefined;
  }
  const shown = await banner({ ...bannerAddresses(scheme, address), ...bannerSettings(s), workers: 1 });
  // "Listening" is said only once a signal would drain the process, not kill it.
  logger.info({ address: base, broker: redactUrl(brokerUrl) }, 'herald listening');
  process.stdout.write(shown);
  return undefined;
}

/** The real listen address, and how a client on this machine reaches it (for the lines to paste). */
function bannerAddresses(
  scheme: string,
  address: { address: string; port: number },
): { base: string; local: string; wildcard: boolean } {
  // The wildcard addresses are not addresses to connect to.
  const reach = address.address === '0.0.0.0' ? '127.0.0.1' : address.address === '::' ? '::1' : address.address;
  return {
    base: `${scheme}://${hostPart(address.address)}:${address.port}`,
    local: `${scheme}://${hostPart(reach)}:${address.port}`,
    wildcard: address.address === '0.0.0.0' || address.address === '::',
  };
}

function bannerSettings(
  s: Settled,
): Pick<Parameters<typeof banner>[0], 'demo' | 'apiKey' | 'jwtSecret' | 'generated' | 'brokerUrl'> {
  return { demo: s.demo, apiKey: s.apiKey, jwtSecret: s.jwtSecret, generated: s.generated, brokerUrl: s.brokerUrl };
}

/** HERALD_JWT_PUBLIC_KEY: the key itself (PEM or JSON), or the path of a file holding it; checked here. */
function publicKeyText(value: string): string {
  const text = value.trim();
  const key = text.startsWith('-----BEGIN') || text.startsWith('{') ? text : readPublicKeyFile(text);
  try {
    parsePublicKeys(key);
  } catch (error) {
    if (!(error instanceof PublicKeyError)) throw error;
    throw new ConfigError(`Invalid configuration: HERALD_JWT_PUBLIC_KEY (jwtPublicKey) ${error.message}.`);
  }
  return key;
}

function readPublicKeyFile(text: string): string {
  try {
    return readFileSync(text, 'utf8');
  } catch {
    const file = text.length <= 200 && !/\s/.test(text) ? ` ${text}` : '';
    throw new ConfigError(
      `HERALD_JWT_PUBLIC_KEY is neither a PEM key nor JSON, and no file${file} can be read (give the key, or the path of a file with it).`,
    );
  }
}

/**
 * The HS256 key of the hub's own pages when no secret is configured: derived from the API key,
 * so every node of a deployment has the same one and nobody without the API key can mint it.
 */
function pageSecret(apiKey: string): string {
  return createHash('sha256').update(`herald-page-tokens\u0000${apiKey}`).digest('base64url');
}

/** HERALD_TLS_CERT and HERALD_TLS_KEY: both or neither; the files are read once, at start. */
function tlsFiles(config: Config): { cert: Buffer; key: Buffer } | undefined {
  if (config.tlsCert === undefined && config.tlsKey === undefined) return undefined;
  if (config.tlsCert === undefined || config.tlsKey === undefined) {
    throw new ConfigError('HERALD_TLS_CERT and HERALD_TLS_KEY must be set together (PEM certificate and key files).');
  }
  const read = (file: string, name: string): Buffer => {
    try {
      return readFileSync(file);
    } catch {
      throw new ConfigError(`Cannot read ${name} file ${file}.`);
    }
  };
  return { cert: read(config.tlsCert, 'HERALD_TLS_CERT'), key: read(config.tlsKey, 'HERALD_TLS_KEY') };
}

function hostPart(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

/** Whether only this machine can connect to `host` (127.0.0.0/8, ::1, localhost). */
function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  if (bare === 'localhost' || bare === '::1') return true;
  return isIP(bare) === 4 && bare.startsWith('127.');
}

async function banner(o: {
  /** The real listen address. */
  base: string;
  /** How a client on this machine reaches it, for the lines to paste. */
  local: string;
  wildcard: boolean;
  demo: boolean;
  apiKey: string;
  jwtSecret: string;
  generated: { apiKey: boolean; jwtSecret: boolean };
  brokerUrl: string;
  workers: number;
}): Promise<string> {
  const where = o.wildcard ? '  (every interface: reachable from the network)' : '';
  const broker = o.workers > 1 && o.brokerUrl === 'memory' ? 'memory, shared by the workers' : redactUrl(o.brokerUrl);
  const workers = o.workers > 1 ? `  (${o.workers} worker processes)` : '';
  const lines = [``, `  Herald is listening on ${o.base}${where}  (broker: ${broker})${workers}`, ``];
  // Generated secrets are printed once, here, because nobody else knows them. Configured ones never are.
  if (o.generated.apiKey) lines.push(`  HERALD_API_KEY    = ${o.apiKey}   (generated; set it to keep it)`);
  if (o.generated.jwtSecret) lines.push(`  HERALD_JWT_SECRET = ${o.jwtSecret}   (generated; set it to keep it)`);
  // Double quotes: a configured key is pasted as $HERALD_API_KEY, which the shell must expand.
  const key = o.generated.apiKey ? o.apiKey : '$HERALD_API_KEY';
  const demoToken = o.generated.jwtSecret
    ? await mintToken({
        secret: o.jwtSecret,
        sub: 'demo-user',
        channels: ['demo*'],
        publish: ['demo*'],
        ttlSeconds: 86_400,
      })
    : '<TOKEN from: npx herald token --sub demo-user --channel "demo*">';
  lines.push(
    ``,
    `  Publish:`,
    `    curl -s -X POST ${o.local}/api/publish -H "Authorization: Bearer ${key}" \\`,
    `      -H 'Content-Type: application/json' -d '{"channel":"demo","data":{"hello":"world"}}'`,
    ``,
    `  Receive (paste into the browser console on ${o.local}/):`,
    `    new EventSource('/sse?channel=demo&token=${demoToken}').onmessage = (e) => console.log(JSON.parse(e.data));`,
    ``,
    `  Admin: ${o.local}/admin (sign in with the API key)   Sample apps: ${o.local}/   Docs: README.md, docs/`,
  );
  if (!o.demo) {
    lines.push(
      `  Demo tokens are off, so the sample apps cannot sign in: HERALD_DEMO=true turns them on (development only).`,
    );
  } else if (o.wildcard) {
    lines.push(`  Demo tokens are ON for anyone who can reach this hub (HERALD_DEMO=true): development only.`);
  }
  lines.push(``);
  return lines.join('\n') + '\n';
}

async function token(args: readonly string[]): Promise<number> {
  const { values } = options({
    args: [...args],
    options: {
      sub: { type: 'string' },
      channel: { type: 'string', multiple: true },
      publish: { type: 'string', multiple: true },
      ttl: { type: 'string' },
      info: { type: 'string' },
      secret: { type: 'string' },
      config: { type: 'string' },
    },
    strict: true,
  });
  if (values.sub === undefined) throw new ConfigError('herald token needs --sub USER.');
  const config = loadConfig(process.env, values.config ?? process.env.HERALD_CONFIG);
  const secret = values.secret ?? config.jwtSecret;
  if (secret === undefined) throw new ConfigError('herald token needs HERALD_JWT_SECRET (or --secret) to sign with.');
  let info: unknown;
  if (values.info !== undefined) {
    try {
      info = JSON.parse(values.info);
    } catch {
      throw new ConfigError('--info must be JSON.');
    }
  }
  const ttl = values.ttl === undefined ? 3600 : /^-?\d{1,9}$/.test(values.ttl) ? Number(values.ttl) : NaN;
  if (!Number.isInteger(ttl)) {
    throw new ConfigError(
      '--ttl must be a whole number of seconds: 0 for no expiry, negative (--ttl=-60) for a token that has already expired.',
    );
  }
  const jwt = await mintToken({
    secret,
    sub: values.sub,
    ...(values.channel === undefined ? {} : { channels: values.channel }),
    ...(values.publish === undefined ? {} : { publish: values.publish }),
    ...(info === undefined ? {} : { info }),
    ...(ttl === 0 ? {} : { ttlSeconds: ttl }),
  });
  process.stdout.write(`${jwt}\n`);
  return 0;
}

/** The hooks the configuration names (HERALD_HOOK_*_URL), or none. */
function hooksOf(config: Config): HooksOptions | undefined {
  const urls = {
    connect: config.hookConnectUrl,
    subscribe: config.hookSubscribeUrl,
    publish: config.hookPublishUrl,
    refresh: config.hookRefreshUrl,
    rpc: config.hookRpcUrl,
  };
  const hooks: Record<string, unknown> = {};
  for (const [name, url] of Object.entries(urls)) if (url !== undefined) hooks[name] = { url };
  if (Object.keys(hooks).length === 0) return undefined;
  return {
    ...hooks,
    ...(config.hookSecret === undefined ? {} : { secret: config.hookSecret }),
    ...(config.hookTimeout === undefined ? {} : { timeoutMs: config.hookTimeout }),
    ...(config.hookForwardHeaders === undefined ? {} : { forwardHeaders: config.hookForwardHeaders }),
  } as HooksOptions;
}
