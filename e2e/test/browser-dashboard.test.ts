/**
 * The dashboard in a real browser (Debian chromium driven by playwright-core) against a real hub process on its web
 * port: sign-in by the magic link the hub prints, an API key made in the page, a real agent (`connect up`, then
 * `connect expose` of a local TCP server) that appears online on the Agents page without a reload, the service with
 * its `connect reach` line, a share created and revoked, repeated public-link requests shown as one audit entry
 * with ×N, and a second user who sees none of it. Screenshots at 1280
 * and 375 px go to artifacts/screenshots/. Runs only with `npm run test:browser` (scripts/run-tests.mjs --browser).
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { identityFromPem, keyFingerprint } from '@private-connect/protocol';
import type { AuditEntry, CreatedLink } from '@private-connect/api';
import type { BrowserContext, Browser, Page } from 'playwright-core';
import {
  echoServer,
  enrolAgent,
  eventually,
  removeDirs,
  startHubProcess,
  startNodeStatic,
  staticTree,
  type AgentHome,
  type HttpBackend,
  type HubProcess,
  type Proc,
  type TcpServer,
} from '../src/index.js';
import { WIDE, launchChromium, shoot as shootPage, signIn as signInAt } from '../src/browser.js';

describe('the web dashboard in chromium', () => {
  let hub: HubProcess;
  let webUrl: string;
  let browser: Browser;
  let owner: BrowserContext;
  let page: Page;
  let app: TcpServer;
  let agent: AgentHome | undefined;
  let expose: Proc | undefined;
  let site: HttpBackend | undefined;
  let siteRoot: string | undefined;
  let apiKey = '';
  const serviceName = 'browser-db';
  const agentLabel = 'browser-agent';

  const signIn = (context: BrowserContext, email: string, next = '/') => signInAt(hub, context, email, next);
  const shoot = (name: string) => shootPage(page, name);

  before(async () => {
    hub = await startHubProcess();
    assert.ok(hub.webUrl, 'the hub opened no web port');
    webUrl = hub.webUrl;
    app = await echoServer();
    browser = await launchChromium();
    owner = await browser.newContext({ viewport: WIDE });
    page = await signIn(owner, 'owner@example.test');
    page.on('dialog', (dialog) => void dialog.accept());
  });

  after(async () => {
    await expose?.stop();
    await browser?.close();
    await app?.close();
    await site?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, agent?.home, siteRoot);
  });

  test('shows Getting started for an empty workspace, with the commands for this hub', async () => {
    await page.getByRole('heading', { name: 'Getting started' }).waitFor();
    await page.getByText(`connect up --hub ${webUrl} --api-key <key you create here>`).waitFor();
    await page.getByText('connect expose localhost:5432 --name prod-db').waitFor();
    await page.getByText('connect reach prod-db').waitFor();
    await shoot('getting-started');
  });

  test('creates an API key in the page, shown once and stored nowhere in the browser', async () => {
    await page.getByLabel('Key name').fill('browser test');
    await page.getByRole('button', { name: 'Create API key' }).click();
    apiKey = (await page.getByTestId('new-api-key').textContent()) ?? '';
    assert.match(apiKey, /^pc_[A-Za-z0-9]{20,}$/);
    // Strings, not functions: the e2e package compiles without the DOM types.
    const stored = await page.evaluate<string>('JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage }, cookies: document.cookie })');
    assert.ok(!stored.includes(apiKey), 'the key is in web storage or a script-readable cookie');
    assert.ok(!/pc_session|session=/.test(stored), `the session cookie is readable by scripts: ${stored}`);
    await page.getByRole('button', { name: 'Done' }).click();
    assert.equal(await page.getByTestId('new-api-key').count(), 0);
  });

  test('lists the key by its prefix only', async () => {
    await page.getByRole('link', { name: 'API keys' }).click();
    const row = page.getByTestId('api-key').filter({ hasText: 'browser test' });
    await row.waitFor();
    const text = (await row.textContent()) ?? '';
    assert.ok(!text.includes(apiKey), 'the list shows the whole key');
    assert.match(text, /pc_\w+…/);
  });

  test('shows a real agent go online on the Agents page without reloading', async () => {
    await page.getByRole('link', { name: 'Agents' }).click();
    await page.getByText('No agents yet').waitFor();
    await page.getByTestId('live-state').and(page.locator('[data-state="live"]')).waitFor();
    await page.evaluate('window.notReloaded = true');
    agent = await enrolAgent({ url: webUrl, apiKey }, { label: agentLabel });
    expose = await agent.expose(`127.0.0.1:${app.port}`, serviceName);
    const card = page.locator(`[data-testid="agent"][data-agent-label="${agentLabel}"][data-online="true"]`);
    await card.waitFor({ timeout: 15_000 });
    const text = (await card.textContent()) ?? '';
    assert.match(text, /127\.0\.x\.x/, 'the address is shown masked');
    assert.ok(!text.includes('127.0.0.1'), 'the whole address is shown');
    assert.equal(await page.evaluate<boolean>('window.notReloaded === true'), true, 'the page reloaded');
    await shoot('agents');
  });

  test('lists the service with a copy-able `connect reach` command', async () => {
    await page.getByRole('link', { name: 'Services' }).click();
    const card = page.locator(`[data-testid="service"][data-service-name="${serviceName}"]`);
    await card.waitFor();
    assert.equal(await card.getAttribute('data-online'), 'true');
    await card.getByText(`connect reach ${serviceName}`).waitFor();
    await card.getByRole('button', { name: /copy command/i }).waitFor();
    assert.match((await card.textContent()) ?? '', new RegExp(`127\\.0\\.0\\.1:${app.port}`));
    await shoot('services');
  });

  test('shows that the service is end-to-end encrypted, and the agent\'s identity key fingerprint', async () => {
    const card = page.locator(`[data-testid="service"][data-service-name="${serviceName}"]`);
    assert.equal(await card.getByTestId('e2e').getAttribute('data-e2e'), 'required');
    assert.match((await card.getByTestId('e2e').textContent()) ?? '', /end-to-end encrypted/);
    // The fingerprint the page shows is the one of the key in the agent's own identity.pem.
    const expected = keyFingerprint(identityFromPem(readFileSync(join(agent!.home, 'identity.pem'), 'utf8')).publicKey);
    await page.getByRole('link', { name: 'Agents' }).click();
    const agentCard = page.locator(`[data-testid="agent"][data-agent-label="${agentLabel}"]`);
    await agentCard.getByTestId('fingerprint').getByText(expected).waitFor({ timeout: 10_000 });
  });

  test('creates a share, shows its code once, and revokes it', async () => {
    await page.getByRole('link', { name: 'Shares' }).click();
    await page.getByText('No shares yet.').waitFor();
    await page.getByLabel('Share name').fill('partner');
    await page.getByRole('checkbox', { name: new RegExp(`^${serviceName}`) }).check();
    await page.getByLabel('Rate per minute (optional)').fill('60');
    await page.getByRole('button', { name: 'Create share' }).click();
    const code = (await page.getByTestId('new-share-code').textContent()) ?? '';
    assert.match(code, /^pcs_/);
    const card = page.locator('[data-testid="share"][data-share-name="partner"]');
    await card.and(page.locator('[data-state="pending"]')).waitFor();
    assert.ok(!((await card.textContent()) ?? '').includes(code), 'the list shows the whole code');
    await shoot('shares');
    await card.getByRole('button', { name: /revoke/i }).click();
    await card.and(page.locator('[data-state="revoked"]')).waitFor();
  });

  test('shows the share in the audit log', async () => {
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByTestId('audit-entry').filter({ hasText: 'share.revoke' }).waitFor();
    await page.getByLabel('Action').fill('share.create');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForFunction(`[...document.querySelectorAll('[data-testid="audit-entry"]')].every((row) => row.textContent.includes('share.create'))`);
    await shoot('audit');
  });

  test('shows how many identical requests through a public link one audit entry stands for (×N)', async () => {
    siteRoot = await staticTree({ 'hello.txt': 'hello\n' });
    site = await startNodeStatic(siteRoot);
    const web = await agent!.expose(`127.0.0.1:${site.port}`, 'browser-web', ['--http']);
    try {
      const made = agent!.run(['link', 'browser-web', '--expires', '1h']);
      assert.equal(made.code, 0, made.stdout + made.stderr);
      const { url } = made.json() as CreatedLink;
      for (let i = 0; i < 5; i++) assert.equal((await fetch(`${url}hello.txt`)).status, 200);
    } finally {
      await web.stop();
    }
    // The hub writes a flush window's accesses after it ends; the page reads the log once per filter.
    await eventually(async () => {
      const answer = await fetch(`${hub.url}/v1/audit?action=link.access`, { headers: { authorization: `Bearer ${apiKey}` } });
      const { events } = (await answer.json()) as { events: AuditEntry[] };
      assert.equal(events.reduce((sum, e) => sum + (e.metadata.count as number), 0), 5);
    });
    await page.getByLabel('Action').fill('link.access');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    // One entry for the five requests, or two if a window ended between them: the ×N add up to five.
    await eventually(async () => {
      const rows = await page.getByTestId('audit-entry').allTextContents();
      assert.ok(rows.every((text) => text.includes('link.access')), rows.join(' | '));
      assert.equal(rows.reduce((sum, text) => sum + Number(/×(\d+)/.exec(text)?.[1] ?? 1), 0), 5, rows.join(' | '));
    });
    const title = (await page.getByTestId('audit-count').first().getAttribute('title')) ?? '';
    assert.match(title, /^\d identical requests, from .+ to .+$/);
    await shoot('audit-count');
  });

  test('shows the agent go offline live when its process ends', async () => {
    await page.getByRole('link', { name: 'Agents' }).click();
    await page.locator(`[data-testid="agent"][data-agent-label="${agentLabel}"][data-online="true"]`).waitFor();
    await expose?.stop();
    expose = undefined;
    await page.locator(`[data-testid="agent"][data-agent-label="${agentLabel}"][data-online="false"]`).waitFor({ timeout: 15_000 });
  });

  test('a second user, in their own workspace, sees none of it', async () => {
    const other = await browser.newContext({ viewport: WIDE });
    try {
      const tab = await signIn(other, 'stranger@example.test', '/agents');
      await tab.getByText('No agents yet').waitFor();
      const options = await tab.getByTestId('workspace-switcher').locator('option').allTextContents();
      assert.equal(options.length, 1, `the switcher offers ${options.join(', ')}`);
      await tab.getByRole('link', { name: 'Services' }).click();
      await tab.getByText('No services yet').waitFor();
      await tab.getByRole('link', { name: 'Shares' }).click();
      await tab.getByText('No shares yet.').waitFor();
      await tab.getByRole('link', { name: 'API keys' }).click();
      await tab.getByText('No API keys yet.').waitFor();
      const body = (await tab.locator('body').textContent()) ?? '';
      for (const secret of [agentLabel, serviceName, 'partner', 'browser test']) assert.ok(!body.includes(secret), `the stranger sees "${secret}"`);
    } finally {
      await other.close();
    }
  });
});
