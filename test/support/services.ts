/**
 * Real services for tests (Redis, NATS, Chromium, nginx, Mosquitto). A test that needs one calls
 * `requireService`: on a laptop without it the test skips with a message; in CI
 * (HERALD_REQUIRE_SERVICES=1) a missing service fails the test instead, so nothing is silently skipped.
 */
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import type { TestContext } from 'node:test';

export const REQUIRE_SERVICES = process.env.HERALD_REQUIRE_SERVICES === '1';

export function portOpen(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export const SERVICES = {
  redis: { check: () => portOpen(6379), hint: 'Redis on 127.0.0.1:6379' },
  nats: { check: () => portOpen(4222), hint: 'NATS with JetStream on 127.0.0.1:4222' },
  mosquitto: { check: () => portOpen(1883), hint: 'Mosquitto on 127.0.0.1:1883' },
  chromium: {
    check: async () => existsSync('/usr/bin/chromium'),
    hint: '/usr/bin/chromium (apt-get install chromium)',
  },
  nginx: { check: async () => existsSync('/usr/sbin/nginx'), hint: '/usr/sbin/nginx (apt-get install nginx)' },
  'redis-server': { check: async () => existsSync('/usr/bin/redis-server'), hint: 'the redis-server binary' },
  'nats-server': { check: async () => existsSync('/usr/sbin/nats-server'), hint: 'the nats-server binary' },
} as const;

export type ServiceName = keyof typeof SERVICES;

/**
 * Returns true when the services are there. Otherwise skips the test (returns false), or throws
 * when HERALD_REQUIRE_SERVICES=1.
 */
export async function requireService(t: TestContext, ...names: ServiceName[]): Promise<boolean> {
  for (const name of names) {
    if (await SERVICES[name].check()) continue;
    const message = `needs ${SERVICES[name].hint}`;
    if (REQUIRE_SERVICES) throw new Error(`${message} (HERALD_REQUIRE_SERVICES=1: failing instead of skipping)`);
    t.skip(message);
    return false;
  }
  return true;
}

/** Launch options for Debian's Chromium under playwright-core, as this machine needs them. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
export const CHROMIUM_PATH = '/usr/bin/chromium';
