/**
 * Many idle agents in one process: enrolled through the hub's API (what `connect up` calls), each holding one
 * authenticated WebSocket that completed the hello/welcome handshake, via the SDK's HubConnection.
 */

import { ApiClient, HubConnection, type EnrolResult } from '@private-connect/sdk';

/** Enrols `count` agents with the API key, `parallel` requests at a time. */
export async function enrolMany(hubUrl: string, apiKey: string, count: number, parallel = 16): Promise<EnrolResult[]> {
  const api = new ApiClient({ hubUrl, credential: apiKey });
  const out: EnrolResult[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await api.enrol({ label: `bench-idle-${i}`, hostname: 'bench', platform: process.platform });
      }
    }),
  );
  return out;
}

export interface Fleet {
  connections: HubConnection[];
  /** Seconds from the first connect to the last welcome. */
  connectSeconds: number;
  close(): Promise<void>;
}

/** Connects one HubConnection per token, `parallel` handshakes at a time; resolves once every one got its welcome. */
export async function connectFleet(hubUrl: string, tokens: string[], parallel = 50, timeoutMs = 60_000): Promise<Fleet> {
  const connections: HubConnection[] = [];
  const start = process.hrtime.bigint();
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < tokens.length) {
          const i = next++;
          const conn = new HubConnection({
            hubUrl,
            token: tokens[i]!,
            agent: { version: '0.1.0', label: `bench-idle-${i}`, hostname: 'bench', platform: process.platform },
            backoff: { initialMs: 250, maxMs: 2000 },
          });
          connections.push(conn);
          conn.start();
          await conn.ready(timeoutMs);
        }
      }),
    );
  } catch (err) {
    await Promise.all(connections.map((c) => c.close()));
    throw err;
  }
  const connectSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  return {
    connections,
    connectSeconds,
    async close() {
      await Promise.all(connections.map((c) => c.close()));
    },
  };
}
