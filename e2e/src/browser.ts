/**
 * Browser tests' shared pieces: Debian chromium launched by playwright-core (which downloads nothing), sign-in as a
 * person does it (the /login form, the link the hub prints on its console, the Sign in button), screenshots at the
 * two widths the dashboard is checked at, and same-origin API calls made by the page itself.
 */

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { HubProcess } from './harness.js';

export const CHROMIUM = process.env.BROWSER_PATH ?? '/usr/bin/chromium';
/** Git-ignored; CI keeps it as an artifact. SCREENSHOTS_DIR puts them elsewhere (e.g. to attach to a note). */
export const SHOTS = process.env.SCREENSHOTS_DIR || fileURLToPath(new URL('../../../artifacts/screenshots/', import.meta.url));
export const WIDE = { width: 1280, height: 900 };
export const NARROW = { width: 375, height: 812 };

/** Escapes a string for a RegExp. */
export const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export async function launchChromium(): Promise<Browser> {
  await mkdir(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Waits for the hub to print a link for `email` after stderr offset `from`; returns it. */
export async function printedLink(hub: HubProcess, email: string, from: number): Promise<URL> {
  const pattern = new RegExp(`link for ${literal(email)}: (\\S+)`);
  let link: string | undefined;
  for (let waited = 0; !link && waited < 15_000; waited += 100) {
    link = pattern.exec(hub.proc.stderr().slice(from))?.[1];
    if (!link) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(link, `the hub printed no link for ${email}:\n${hub.proc.stderr()}`);
  return new URL(link);
}

/** Opens a printed link on the web port (the dashboard's origin) and presses Sign in; resolves on `next`. */
export async function followLink(tab: Page, hub: HubProcess, link: URL, next = '/'): Promise<void> {
  await tab.goto(`${hub.webUrl}${link.pathname}${link.search}`);
  await tab.getByRole('button', { name: 'Sign in' }).click();
  await tab.waitForURL(`${hub.webUrl}${next}`);
}

/** Signs `email` in the way a person does and returns the tab, on `next`. */
export async function signIn(hub: HubProcess, context: BrowserContext, email: string, next = '/'): Promise<Page> {
  const tab = await context.newPage();
  await tab.goto(`${hub.webUrl}/login?next=${encodeURIComponent(next)}`);
  await tab.getByLabel(/email/i).fill(email);
  const printed = hub.proc.stderr().length;
  await tab.getByRole('button', { name: /sign-in link/i }).click();
  await followLink(tab, hub, await printedLink(hub, email, printed), next);
  return tab;
}

/** Full-page screenshots of `page` at 1280 and 375 px, then back to 1280. */
export async function shoot(page: Page, name: string): Promise<void> {
  for (const [size, viewport] of [['1280', WIDE], ['375', NARROW]] as const) {
    await page.setViewportSize(viewport);
    await page.screenshot({ path: join(SHOTS, `${name}-${size}.png`), fullPage: true });
  }
  await page.setViewportSize(WIDE);
}

/** A same-origin API call made by the page (with its session cookie); resolves with status and parsed body. */
export async function pageApi(page: Page, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  // A string, not a function: the e2e package compiles without the DOM types.
  const script = `fetch(${JSON.stringify(path)}, { method: ${JSON.stringify(method)}, credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json' }, body: ${body === undefined ? 'undefined' : JSON.stringify(JSON.stringify(body))} })
    .then(async (r) => ({ status: r.status, text: await r.text() }))`;
  const answer = await page.evaluate<{ status: number; text: string }>(script);
  return { status: answer.status, body: answer.text ? JSON.parse(answer.text) : undefined };
}
