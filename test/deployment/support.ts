/**
 * Deployment test support: a real nginx on a spare loopback port, run unprivileged from a temp
 * prefix, and small helpers for timing SSE events and reading a node's metrics.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const NGINX = '/usr/sbin/nginx';

/** A port nobody listens on right now (bound then released; good enough on loopback). */
export async function sparePort(): Promise<number> {
  return (await spareDistinctPorts(1))[0] as number;
}

/** `count` different spare ports: all are bound at once before any is released, so none repeats. */
export async function spareDistinctPorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** `http {}` lines that keep every nginx file inside `dir`. */
export function tempPaths(dir: string): string {
  for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'])
    mkdirSync(join(dir, sub), { recursive: true });
  return [
    `client_body_temp_path ${join(dir, 'client_body')};`,
    `proxy_temp_path ${join(dir, 'proxy')};`,
    `fastcgi_temp_path ${join(dir, 'fastcgi')};`,
    `uwsgi_temp_path ${join(dir, 'uwsgi')};`,
    `scgi_temp_path ${join(dir, 'scgi')};`,
    'access_log off;',
  ].join('\n  ');
}

function nginxArgs(dir: string, conf: string): string[] {
  return [
    '-e',
    'stderr',
    '-p',
    `${dir}/`,
    '-c',
    conf,
    '-g',
    `daemon off; pid ${join(dir, 'nginx.pid')}; error_log stderr;`,
  ];
}

/** `nginx -t` on a configuration: null when valid, else nginx's complaint. */
export function nginxCheck(dir: string, confText: string): string | null {
  const conf = join(dir, 'check.conf');
  writeFileSync(conf, confText);
  const result = spawnSync(NGINX, ['-t', ...nginxArgs(dir, conf)], { encoding: 'utf8', timeout: 10_000 });
  return result.status === 0 ? null : `${result.stderr}${result.stdout}`;
}

export interface NginxProcess {
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts nginx in the foreground with `confText`; resolves once `readyUrl` answers 200. */
export async function startNginx(dir: string, confText: string, readyUrl: string): Promise<NginxProcess> {
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, confText);
  const child = spawn(NGINX, nginxArgs(dir, conf), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (output += s));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${output}`);
    try {
      const response = await fetch(readyUrl);
      await response.arrayBuffer();
      if (response.ok) return { child, output: () => output, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop();
  throw new Error(`nginx did not become ready: ${output}`);
}

/** One Prometheus sample of a node's /metrics, summed over its label sets. */
export async function metric(baseUrl: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels !== '' && !line.includes(labels)) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** A self-signed certificate for 127.0.0.1 and localhost, made with the openssl command. */
export function selfSignedCert(dir: string): { certFile: string; keyFile: string } {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const result = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { encoding: 'utf8', timeout: 20_000 },
  );
  if (result.status !== 0) throw new Error(`openssl failed: ${result.stderr}`);
  return { certFile, keyFile };
}
