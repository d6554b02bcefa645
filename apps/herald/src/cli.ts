/**
 * The `herald` command: `serve` (the default), `token`, `bench`. Configuration errors end the
 * process with one sentence and exit code 2; nothing else is printed to confuse the user.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { resolveIntegrationsOptions, startIntegrations } from '@herald/integrations';
import { HeraldServer, OptionsError } from '@herald/server';
import { attachSocketIo } from '@herald/transport-socketio';
import { pino } from 'pino';
import { createBackend, redactUrl } from './backend.js';
import { ConfigError, loadConfig, settingNames, type Config } from './config.js';
import { pages } from './pages.js';
import { mintToken } from './token.js';

const HELP = `herald: one real-time hub, every transport (WebSocket, SSE, long-polling, Socket.IO)

Usage:
  herald [serve] [--config FILE]      start the hub (the default command)
  herald token --sub USER [--channel PATTERN]... [--publish PATTERN]... [--ttl SECONDS] [--info JSON]
                                      print a client JWT signed with HERALD_JWT_SECRET
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
  if (args.includes('--help') || args.includes('-h') || command === 'help') {
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
  const { values } = parseArgs({
    args: [...args],
    options: { config: { type: 'string' } },
    allowPositionals: false,
    strict: true,
  });
  return loadConfig(process.env, values.config ?? process.env.HERALD_CONFIG);
}

async function serve(args: readonly string[]): Promise<number | undefined> {
  const config = configFrom(args);
  const tls = tlsFiles(config);
  const generated = { apiKey: config.apiKey === undefined, jwtSecret: config.jwtSecret === undefined };
  const apiKey = config.apiKey ?? randomBytes(24).toString('base64url');
  const jwtSecret = config.jwtSecret ?? randomBytes(32).toString('base64url');
  // Without configured credentials the hub is a development instance: keep it off the network.
  const host = config.host ?? (generated.apiKey && generated.jwtSecret ? '127.0.0.1' : '0.0.0.0');
  const port = config.port ?? 8080;
  const logger = pino({
    level: config.logLevel ?? 'info',
    base: { service: 'herald' },
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'token', 'apiKey', 'jwtSecret'],
      censor: '[redacted]',
    },
  });
  const brokerUrl = config.broker ?? 'memory';
  // Checked before anything starts, so a bad integrations section ends with exit code 2.
  resolveIntegrationsOptions(config.integrations ?? {}, brokerUrl);
  const history = { size: config.historySize ?? 1000, ttlSeconds: config.historyTtl ?? 600 };
  const backend = await createBackend(brokerUrl, history, logger, { presenceTtlSeconds: config.presenceTtl });
  const site = pages({
    apiKey,
    jwtSecret,
    jwtAudience: config.jwtAudience,
    jwtIssuer: config.jwtIssuer,
    admin: config.admin ?? true,
    // The demo token endpoint hands out tokens: only on a development instance, or when asked for.
    demo: config.demo ?? generated.jwtSecret,
  });
  const server = new HeraldServer({
    apiKey,
    jwtSecret,
    jwtLeewaySeconds: config.jwtLeeway,
    jwtAudience: config.jwtAudience,
    jwtIssuer: config.jwtIssuer,
    anonymousChannels: config.anonymousChannels,
    origins: config.origins,
    broker: backend.broker,
    presence: backend.presence,
    historySize: history.size,
    historyTtlSeconds: history.ttlSeconds,
    maxMessageBytes: config.maxMessageBytes,
    maxQueueBytes: config.maxQueueBytes,
    pingIntervalSeconds: config.pingInterval,
    tokenCookie: config.tokenCookie,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    connectionRatePerIp: config.connectionRatePerIp,
    connectionRate: config.connectionRate,
    maxConnectionsPerUser: config.maxConnectionsPerUser,
    logger,
    routes: site.routes,
    tls,
  });
  // Socket.IO clients on /socket.io/ (docs/socketio.md); on unless HERALD_SOCKETIO=false.
  if (config.socketio ?? true) attachSocketIo(server);
  const address = await server.listen(port, host);
  site.attach(server);
  const integrations = await startIntegrations(server, config.integrations, { logger, brokerUrl }).catch(
    async (error: unknown) => {
      await server.drain();
      throw error;
    },
  );
  const base = `${tls === undefined ? 'http' : 'https'}://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  const shownBase = address.address === '0.0.0.0' ? base.replace('0.0.0.0', '127.0.0.1') : base;
  const shown = await banner({ base: shownBase, apiKey, jwtSecret, generated, brokerUrl });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining');
    // Never hang: a drain that cannot finish still ends the process.
    setTimeout(() => process.exit(1), 30_000).unref();
    server
      .drain()
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
  // "Listening" is said only once a signal would drain the process, not kill it.
  logger.info({ address: base, broker: redactUrl(brokerUrl) }, 'herald listening');
  process.stdout.write(shown);
  return undefined;
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

async function banner(o: {
  base: string;
  apiKey: string;
  jwtSecret: string;
  generated: { apiKey: boolean; jwtSecret: boolean };
  brokerUrl: string;
}): Promise<string> {
  const lines = [``, `  Herald is listening on ${o.base}  (broker: ${redactUrl(o.brokerUrl)})`, ``];
  // Generated secrets are printed once, here, because nobody else knows them. Configured ones never are.
  if (o.generated.apiKey) lines.push(`  HERALD_API_KEY    = ${o.apiKey}   (generated; set it to keep it)`);
  if (o.generated.jwtSecret) lines.push(`  HERALD_JWT_SECRET = ${o.jwtSecret}   (generated; set it to keep it)`);
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
    `    curl -s -X POST ${o.base}/api/publish -H 'Authorization: Bearer ${key}' \\`,
    `      -H 'Content-Type: application/json' -d '{"channel":"demo","data":{"hello":"world"}}'`,
    ``,
    `  Receive (paste into the browser console on ${o.base}/):`,
    `    new EventSource('/sse?channel=demo&token=${demoToken}').onmessage = (e) => console.log(JSON.parse(e.data));`,
    ``,
    `  Admin: ${o.base}/admin (sign in with the API key)   Sample apps: ${o.base}/   Docs: README.md, docs/`,
    ``,
  );
  return lines.join('\n') + '\n';
}

async function token(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
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
  if (values.sub === undefined) throw new ConfigError('herald token needs --sub USER');
  const config = loadConfig(process.env, values.config ?? process.env.HERALD_CONFIG);
  const secret = values.secret ?? config.jwtSecret;
  if (secret === undefined) throw new ConfigError('herald token needs HERALD_JWT_SECRET (or --secret) to sign with');
  let info: unknown;
  if (values.info !== undefined) {
    try {
      info = JSON.parse(values.info);
    } catch {
      throw new ConfigError('--info must be JSON');
    }
  }
  const ttl = values.ttl === undefined ? 3600 : Number(values.ttl);
  if (!Number.isInteger(ttl) || ttl < 0)
    throw new ConfigError('--ttl must be a whole number of seconds (0 = no expiry)');
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
