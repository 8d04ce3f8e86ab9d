/**
 * One HTTP(S) request to a hub's API, on node:http / node:https rather than fetch: Node 20's fetch cannot be given
 * extra CA certificates per request, and a hub with a private certificate needs them (`--ca`, hub-url.ts).
 */

import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { hubCa, hubConnectError } from './agent/hub-url.js';

/** Largest API answer read; an answer past it is cut off (and then fails to parse as JSON). */
export const MAX_API_RESPONSE_BYTES = 8 * 1024 * 1024;

export interface HubRequest {
  method: string;
  /** Full URL (from apiBaseUrl + path). */
  url: string;
  /** The hub URL as the user gave it, for error messages. */
  hubUrl: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
  /** An extra CA certificate (PEM) for this request, besides those of trustHubCa(). */
  ca?: string | Buffer;
}

export interface HubAnswer {
  status: number;
  text: string;
  /** The answer's Set-Cookie headers (a sign-in sets the session cookie). */
  setCookie: string[];
}

/** Sends the request; rejects with HUB_UNREACHABLE or HUB_CERTIFICATE (ConnectError) when no answer comes. */
export function hubRequest(options: HubRequest): Promise<HubAnswer> {
  const url = new URL(options.url);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const ca = url.protocol === 'https:' ? hubCa(options.ca) : undefined;
  const headers = { ...options.headers, ...(options.body !== undefined ? { 'content-length': String(Buffer.byteLength(options.body)) } : {}) };
  return new Promise((resolve, reject) => {
    const req = send(url, { method: options.method, headers, timeout: options.timeoutMs, ...(ca ? { ca } : {}) }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_API_RESPONSE_BYTES) chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), setCookie: res.headers['set-cookie'] ?? [] }));
      res.on('error', (err: Error & { code?: string }) => reject(hubConnectError(options.hubUrl, err.code, err.message)));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${options.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', (err: Error & { code?: string }) => reject(hubConnectError(options.hubUrl, err.code, err.message)));
    req.end(options.body);
  });
}

/**
 * Opens a request whose answer is read as it comes (GET /v1/events): resolves with the response once its headers
 * are in, whatever the status; `signal` aborts it (the response then ends).
 */
export function hubStream(options: Omit<HubRequest, 'body' | 'timeoutMs'> & { signal?: AbortSignal; connectTimeoutMs: number }): Promise<IncomingMessage> {
  const url = new URL(options.url);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const ca = url.protocol === 'https:' ? hubCa(options.ca) : undefined;
  return new Promise((resolve, reject) => {
    const req = send(url, { method: options.method, headers: options.headers, ...(ca ? { ca } : {}), ...(options.signal ? { signal: options.signal } : {}) }, (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    const timer = setTimeout(() => req.destroy(Object.assign(new Error(`no answer within ${options.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' })), options.connectTimeoutMs);
    req.on('error', (err: Error & { code?: string }) => {
      clearTimeout(timer);
      reject(err.name === 'AbortError' ? err : hubConnectError(options.hubUrl, err.code, err.message));
    });
    req.end();
  });
}
