/**
 * The newcomer path of the README, in chromium: the hub's first start prints its banner (dashboard URL, API key,
 * one-time setup link); the setup link, opened as printed, asks for an email; the sign-in link the hub prints (no
 * SMTP) is opened as printed too, on the dashboard's origin; the dashboard then shows the workspace the first start
 * made, and an agent enrolled with the printed key and its exposed service appear in it without a reload.
 * Screenshots at 1280 and 375 px: artifacts/screenshots/newcomer-*.png (SCREENSHOTS_DIR to put them elsewhere).
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { enrolAgent, removeDirs, startHubProcess, type AgentHome, type HubProcess } from '../src/harness.js';
import type { Proc } from '../src/processes.js';
import { echoServer, eventually, type TcpServer } from '../src/tcp.js';
import { WIDE, launchChromium, printedLink, shoot } from '../src/browser.js';

/** What the first start's banner says (welcome.ts). */
interface Banner {
  hubUrl: string;
  dashboard: string;
  apiKey: string;
  setupLink: string;
}

function readBanner(stderr: string): Banner {
  const hubUrl = /hub is running on (\S+)/.exec(stderr)?.[1];
  const dashboard = /^Dashboard: (\S+)$/m.exec(stderr)?.[1];
  const apiKey = /^ {4}(pc_[A-Za-z0-9]{32})$/m.exec(stderr)?.[1];
  const setupLink = /^ {4}(\S+\/setup\?token=\S+)$/m.exec(stderr)?.[1];
  if (!hubUrl || !dashboard || !apiKey || !setupLink) throw new Error(`the banner is not complete yet:\n${stderr}`);
  return { hubUrl, dashboard, apiKey, setupLink };
}

describe('a newcomer: npm start, the setup link, sign-in, the dashboard of the first workspace', () => {
  let hub: HubProcess;
  let banner: Banner;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let app: TcpServer;
  let agent: AgentHome | undefined;
  let expose: Proc | undefined;
  const email = 'newcomer@example.test';

  before(async () => {
    // `npm start` on a fresh clone: a new data folder, no preset key (the banner's random one is used). Free ports
    // and 127.0.0.1 instead of 3001/3000 on every address, so that tests can run side by side.
    hub = await startHubProcess({ env: { HUB_BOOTSTRAP_API_KEY: '' } });
    banner = await eventually(async () => readBanner(hub.proc.stderr()), 15_000);
    app = await echoServer();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: WIDE });
    page = await context.newPage();
  });
  after(async () => {
    await expose?.stop();
    await context?.close();
    await browser?.close();
    await app?.close();
    await hub?.stop();
    await removeDirs(agent?.home, hub?.dataDir);
  });

  test('the banner names the dashboard, on the same host as the hub, and the setup link on it', () => {
    const [hubUrl, dashboard] = [new URL(banner.hubUrl), new URL(banner.dashboard)];
    assert.equal(hubUrl.hostname, 'localhost');
    assert.equal(dashboard.hostname, hubUrl.hostname, 'one host name for the hub and the dashboard');
    assert.equal(dashboard.port, new URL(hub.webUrl!).port, 'the dashboard is the web port');
    assert.equal(new URL(banner.setupLink).origin, dashboard.origin);
    assert.match(hub.proc.stderr(), /works ONCE, for 24 hours/);
  });

  test('the setup link, opened as printed, and the sign-in link it sends lead to the dashboard of the first workspace', async () => {
    await page.goto(banner.setupLink);
    await page.getByRole('heading', { name: 'Set up this hub' }).waitFor();
    await page.getByLabel(/email/i).fill(email);
    await shoot(page, 'newcomer-setup');
    const printed = hub.proc.stderr().length;
    await page.getByRole('button', { name: /sign-in link/i }).click();
    await page.getByRole('heading', { name: 'Check your email' }).waitFor();
    const link = await printedLink(hub, email, printed);
    assert.equal(link.origin, banner.dashboard, 'the sign-in link is on the dashboard URL the banner printed');
    await page.goto(link.href);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${banner.dashboard}/`);
    const switcher = page.getByTestId('workspace-switcher');
    await switcher.waitFor();
    assert.match((await switcher.locator('option:checked').textContent()) ?? '', /^default \(owner\)$/);
  });

  test('an agent enrolled with the printed key and its service appear without a reload', async () => {
    await page.getByRole('link', { name: 'Agents', exact: true }).click();
    await page.getByTestId('live-state').and(page.locator('[data-state="live"]')).waitFor();
    await page.evaluate('window.notReloaded = true');
    // As the banner says: connect up --hub <hub URL> --api-key <key>, then expose.
    agent = await enrolAgent({ url: banner.hubUrl, apiKey: banner.apiKey }, { label: 'newcomer-laptop' });
    expose = await agent.expose(`127.0.0.1:${app.port}`, 'prod-db');
    await page.locator('[data-testid="agent"][data-agent-label="newcomer-laptop"][data-online="true"]').waitFor({ timeout: 15_000 });
    await page.getByRole('link', { name: 'Services', exact: true }).click();
    await page.locator('[data-testid="service"][data-service-name="prod-db"][data-online="true"]').waitFor({ timeout: 15_000 });
    assert.equal(await page.evaluate<boolean>('window.notReloaded === true'), true, 'the page reloaded');
    await shoot(page, 'newcomer-services');
    await page.getByRole('link', { name: 'Agents', exact: true }).click();
    await page.locator('[data-testid="agent"][data-agent-label="newcomer-laptop"]').waitFor();
    await shoot(page, 'newcomer-agents');
  });

  test('the setup link works once: opened again it says so, with its code', async () => {
    const again = await context.newPage();
    await again.goto(banner.setupLink);
    await again.getByRole('heading', { name: 'This setup link does not work' }).waitFor();
    assert.equal(await again.locator('[data-code]').getAttribute('data-code'), 'LINK_USED');
    await shoot(again, 'newcomer-setup-used');
    await again.close();
  });
});
