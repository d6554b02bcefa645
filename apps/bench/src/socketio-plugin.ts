/**
 * Finds the Herald Socket.IO plugin at run time. The package is optional for the bench: when it
 * is missing or exports no attach function yet, the Herald/Socket.IO row reports "n/a".
 */
import type { HeraldServer } from '@herald/server';

const PACKAGE = '@herald/transport-socketio';
const ATTACH_NAMES = ['attachSocketIo', 'attachSocketIO', 'socketIoTransport', 'installSocketIo'];

type Attach = (server: HeraldServer, options?: object) => unknown;

async function findAttach(): Promise<Attach | undefined> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(PACKAGE)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  for (const name of ATTACH_NAMES) {
    const candidate = mod[name];
    if (typeof candidate === 'function') return candidate as Attach;
  }
  return undefined;
}

/** Whether the plugin exists; does not start anything. */
export async function socketIoPluginAvailable(): Promise<boolean> {
  return (await findAttach()) !== undefined;
}

export async function attachSocketIoPlugin(server: HeraldServer): Promise<boolean> {
  const attach = await findAttach();
  if (attach === undefined) return false;
  await attach(server, { transports: ['websocket'] });
  return true;
}
