/**
 * A public link for a local webhook receiver: expose the receiver (an HTTP service), make a link to it with the
 * typed API client, deliver a webhook through the link, revoke the link, and show that it now refuses.
 */

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConnectError } from '@private-connect/protocol';
import type { CreatedLink } from '@private-connect/api';
import { ApiClient, expose, requireConfig, resolveHome, type ConnectOptions } from '@private-connect/sdk';

/** Largest webhook body the receiver accepts. */
export const MAX_WEBHOOK_BYTES = 1024 * 1024;

export interface WebhookLinkOptions extends ConnectOptions {
  /** The service name of the receiver (default webhook-<random>). */
  name?: string;
  /** Where each step is reported (default: nowhere). */
  log?: (line: string) => void;
}

export interface WebhookLinkResult {
  service: string;
  /** The link's path-mode URL (the token is in it). */
  url: string;
  linkId: string;
  /** What the receiver got through the link. */
  delivered: { method: string; path: string; body: unknown };
  /** The answer to the delivery through the live link. */
  deliveredStatus: number;
  /** The answer once the link is revoked, and its error code. */
  revokedStatus: number;
  revokedCode: string;
}

interface Delivery {
  method: string;
  path: string;
  body: unknown;
}

/** Runs the whole walk-through once; rejects with a ConnectError when a step does not answer as expected. */
export async function runWebhookLink(options: WebhookLinkOptions = {}): Promise<WebhookLinkResult> {
  const log = options.log ?? (() => undefined);
  const name = options.name ?? `webhook-${randomBytes(3).toString('hex')}`;
  const credentials = options.hubUrl && options.token ? { hubUrl: options.hubUrl, token: options.token } : await requireConfig(resolveHome(options.home));
  const receiver = await startReceiver();
  try {
    const exposed = await expose(`127.0.0.1:${receiver.port}`, { ...options, name, protocol: 'http' });
    try {
      log(`exposed the webhook receiver on 127.0.0.1:${receiver.port} as ${name}`);
      const api = new ApiClient({ hubUrl: credentials.hubUrl, credential: credentials.token, allowInsecure: options.allowInsecure, ca: options.ca });
      const link: CreatedLink = await api.createLink({ service: name, expiresIn: '30m', methods: ['POST'], paths: ['/hooks'] });
      log(`public link ${link.link.id}: ${link.url} (POST only, under /hooks)`);

      const event = { event: 'deploy.finished', id: randomBytes(4).toString('hex') };
      const delivered = await post(`${link.url}hooks/deploy`, event);
      const received = receiver.deliveries.shift();
      log(`delivered through the link: HTTP ${delivered.status}; the receiver got ${received?.method} ${received?.path}`);
      if (delivered.status !== 200 || !received) throw new ConnectError('INTERNAL', `the webhook did not arrive: HTTP ${delivered.status} ${delivered.text}`);

      await api.revokeLink(link.link.id);
      log(`revoked link ${link.link.id}`);
      const refused = await post(`${link.url}hooks/deploy`, event);
      const code = (JSON.parse(refused.text) as { error?: { code?: string } }).error?.code ?? '';
      log(`the revoked link answers HTTP ${refused.status} ${code}`);
      if (receiver.deliveries.length > 0) throw new ConnectError('INTERNAL', 'the receiver got a webhook through a revoked link');
      return {
        service: name,
        url: link.url,
        linkId: link.link.id,
        delivered: received,
        deliveredStatus: delivered.status,
        revokedStatus: refused.status,
        revokedCode: code,
      };
    } finally {
      await exposed.close();
    }
  } finally {
    await receiver.close();
  }
}

/** POSTs `body` as JSON and asks for JSON errors (the hub answers people with HTML pages). */
async function post(url: string, body: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, text: await res.text() };
}

/** The local webhook receiver: records every POST under /hooks, answers anything else (health checks) with 200. */
async function startReceiver() {
  /** Webhooks received and not yet looked at; runWebhookLink takes them out. */
  const deliveries: Delivery[] = [];
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST' || !req.url?.startsWith('/hooks/')) return void res.end('webhook receiver');
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_WEBHOOK_BYTES) return void req.destroy();
      chunks.push(chunk);
    });
    req.on('end', () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return void res.writeHead(400, { 'content-type': 'application/json' }).end('{"ok":false,"error":"expected a JSON body"}');
      }
      deliveries.push({ method: req.method!, path: req.url!, body });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    deliveries,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
