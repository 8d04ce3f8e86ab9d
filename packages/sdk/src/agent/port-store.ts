/** Stable local ports: `~/.connect/ports.json` remembers which port each reached service listens on. */

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { ConnectError } from '@private-connect/protocol';

export type PortMap = Record<string, number>;

export async function readPorts(file: string): Promise<PortMap> {
  try {
    const value: unknown = JSON.parse(await readFile(file, 'utf8'));
    if (typeof value !== 'object' || value === null) return {};
    const out: PortMap = {};
    for (const [name, port] of Object.entries(value)) if (Number.isInteger(port) && port > 0 && port < 65536) out[name] = port as number;
    return out;
  } catch {
    return {};
  }
}

/** Records the port of one service (read-modify-write, atomic rename). */
export async function savePort(file: string, name: string, port: number): Promise<void> {
  const ports = await readPorts(file);
  if (ports[name] === port) return;
  ports[name] = port;
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(ports, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

/** True if `port` can be bound on `host` right now. */
export function portIsFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

export interface PortChoice {
  port: number;
  /** The port wanted first, when it was taken and another was chosen. */
  wanted?: number;
}

/**
 * Chooses the local port for a service: the explicit one (must be free), else the remembered one, else the
 * service's own port; when that one is taken, the next free port above it.
 */
export async function choosePort(options: { explicit?: number; remembered?: number; preferred: number; host: string }): Promise<PortChoice> {
  const { explicit, remembered, preferred, host } = options;
  if (explicit !== undefined) {
    if (explicit === 0 || (await portIsFree(explicit, host))) return { port: explicit };
    throw new ConnectError('PORT_IN_USE', `port ${explicit} on ${host} is already in use; pick another with --port`);
  }
  const wanted = remembered ?? preferred;
  for (let port = wanted; port < Math.min(wanted + 200, 65536); port++) {
    if (await portIsFree(port, host)) return port === wanted ? { port } : { port, wanted };
  }
  throw new ConnectError('PORT_IN_USE', `no free port between ${wanted} and ${wanted + 199} on ${host}; pick one with --port`);
}
