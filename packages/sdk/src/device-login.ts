/**
 * The agent's side of device-code enrolment (`connect up` without an API key): ask the hub for a code, show the
 * user code, poll until a signed-in member approves it, and receive an agent token.
 */

import type { DeviceCodeAnswer, RouteAnswer, RouteBody } from '@private-connect/api';
import { routeRequest } from '@private-connect/api/route-path';
import { ConnectError, errorFromBody } from '@private-connect/protocol';
import { apiBaseUrl } from './agent/hub-url.js';
import { hubRequest } from './hub-request.js';
import type { EnrolResult } from './api-client.js';

/** POST /v1/device/code's answer (the API contract's DeviceCodeAnswer). */
export type DeviceCode = DeviceCodeAnswer;

export interface DeviceLoginOptions {
  hubUrl: string;
  allowInsecure?: boolean;
  device: { label?: string; hostname?: string; platform?: string };
  /** Called once with the code to show to the person. */
  onCode(code: DeviceCode): void;
  /** Waits between polls (tests pass a shorter one); default the hub's interval. */
  sleep?: (ms: number) => Promise<void>;
  signal?: AbortSignal;
}

type DeviceRoute = 'POST /v1/device/code' | 'POST /v1/device/token';

async function post<R extends DeviceRoute>(base: string, hubUrl: string, route: R, body: RouteBody<R>): Promise<RouteAnswer<R>> {
  const { path } = routeRequest(route, { body } as never);
  const response = await hubRequest({ method: 'POST', url: base + path, hubUrl, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), timeoutMs: 15_000 });
  let json: { error?: unknown } | undefined;
  try {
    json = JSON.parse(response.text) as { error?: unknown };
  } catch {
    throw new ConnectError('HUB_UNREACHABLE', `the hub at ${hubUrl} answered HTTP ${response.status} with something that is not JSON`);
  }
  if (response.status < 200 || response.status > 299) throw errorFromBody(json?.error);
  return json as RouteAnswer<R>;
}

/** Runs the whole flow; resolves with the enrolment once approved, rejects with DEVICE_CODE_EXPIRED etc. */
export async function deviceLogin(options: DeviceLoginOptions): Promise<EnrolResult> {
  const base = apiBaseUrl(options.hubUrl, options.allowInsecure ?? false);
  const code = await post(base, options.hubUrl, 'POST /v1/device/code', options.device);
  options.onCode(code);
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  for (;;) {
    if (options.signal?.aborted) throw new ConnectError('BAD_REQUEST', 'device login cancelled');
    await sleep(code.interval * 1000);
    try {
      return await post(base, options.hubUrl, 'POST /v1/device/token', { device_code: code.device_code });
    } catch (err) {
      if (err instanceof ConnectError && (err.code === 'AUTHORIZATION_PENDING' || err.code === 'RATE_LIMITED')) continue;
      throw err;
    }
  }
}
