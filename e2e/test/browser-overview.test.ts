/**
 * The dashboard's overview and its polish, in chromium against a real hub and a real agent: a direct load draws no
 * focus box around the page; after sign-in the overview counts the agents online and shows each service with its
 * health (one healthy, one whose target is down); the audit log names agents, services, API keys and members
 * instead of showing ids; search and status filters narrow the agents and services; the share and public-link forms
 * offer the workspace's own services; the header stays one row (at most 64 px) on a 375 px phone.
 * Runs only with `npm run test:browser`.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { connect, echoServer, enrolAgent, freePort, removeDirs, startHubProcess, type AgentHome, type HubProcess, type Proc, type TcpServer } from '../src/index.js';
import { NARROW, WIDE, launchChromium, pageApi, shoot, signIn } from '../src/browser.js';

/** A whole UUID, as ids looked in the audit table before names. */
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

describe('the overview, names and filters of the dashboard (chromium)', () => {
  let hub: HubProcess;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let app: TcpServer;
  let agent: AgentHome | undefined;
  let idle: AgentHome | undefined;
  let healthy: Proc | undefined;
  let down: Proc | undefined;
  const email = 'overview@example.test';
  const keyName = 'overview key';
  const agentLabel = 'overview-agent';
  const idleLabel = 'idle-agent';

  const service = (name: string) => page.locator(`[data-testid="overview-service"][data-service-name="${name}"]`);

  before(async () => {
    hub = await startHubProcess();
    app = await echoServer();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: WIDE });
    page = await signIn(hub, context, email);
    const key = await pageApi(page, 'POST', '/v1/api-keys', { name: keyName });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    agent = await enrolAgent({ url: hub.webUrl!, apiKey: key.body.key }, { label: agentLabel });
    // Enrolled and never started: an agent that is offline.
    idle = await enrolAgent({ url: hub.webUrl!, apiKey: key.body.key }, { label: idleLabel });
    healthy = await agent.expose(`127.0.0.1:${app.port}`, 'ov-db', ['--check-interval', '1']);
    // Nothing listens on a port just found free: the agent's checks of this target fail.
    down = await agent.expose(`127.0.0.1:${await freePort()}`, 'ov-down', ['--check-interval', '1']);
  });

  after(async () => {
    await down?.stop();
    await healthy?.stop();
    await browser?.close();
    await app?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, agent?.home, idle?.home);
  });

  test('draws no focus box around the page after a direct load, and moves focus to the page on navigation', async () => {
    await page.goto(`${hub.webUrl}/agents`);
    await page.getByRole('heading', { name: 'Agents', level: 1 }).waitFor();
    const main = () =>
      page.evaluate<{ focused: boolean; outline: string }>(
        `(() => { const main = document.getElementById('main'); const style = getComputedStyle(main);
          return { focused: document.activeElement === main, outline: style.outlineStyle + ' ' + style.outlineWidth }; })()`,
      );
    const loaded = await main();
    assert.equal(loaded.outline.split(' ')[0], 'none', `the page container has an outline after a direct load: ${JSON.stringify(loaded)}`);
    await page.getByRole('link', { name: 'Services', exact: true }).click();
    await page.getByRole('heading', { name: 'Services', level: 1 }).waitFor();
    const navigated = await main();
    assert.equal(navigated.focused, true, 'focus did not move to the new page');
    assert.equal(navigated.outline.split(' ')[0], 'none', `the page container has an outline after navigation: ${JSON.stringify(navigated)}`);
  });

  test('lands on the overview: agents online of all, each service with its health', async () => {
    await page.goto(`${hub.webUrl}/`);
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    const agents = page.getByTestId('overview-agents');
    await agents.and(page.locator('[data-online="1"][data-total="2"]')).waitFor({ timeout: 15_000 });
    assert.match((await agents.textContent()) ?? '', /1\s*\/\s*2/);
    await service('ov-db').and(page.locator('[data-status="online"]')).waitFor({ timeout: 20_000 });
    await service('ov-down').and(page.locator('[data-status="failing"]')).waitFor({ timeout: 20_000 });
    assert.match((await service('ov-down').textContent()) ?? '', /ECONNREFUSED/);
    assert.match((await service('ov-db').textContent()) ?? '', /healthy/);
    const services = page.getByTestId('overview-services');
    await services.and(page.locator('[data-online="1"][data-failing="1"][data-offline="0"]')).waitFor();
    assert.match((await services.textContent()) ?? '', /1 online.*1 failing.*0 offline/);
    await page.getByTestId('overview-traffic').getByTestId('throughput').waitFor();
    await page.locator(`[data-testid="overview-agent"][data-agent-label="${idleLabel}"][data-online="false"]`).waitFor();
  });

  test('lists recent events on the overview by name', async () => {
    const events = page.getByTestId('overview-event');
    await events.filter({ hasText: 'service.expose' }).first().waitFor();
    const text = (await events.allTextContents()).join('\n');
    assert.ok(text.includes(agentLabel), text);
    assert.ok(!UUID.test(text), `an id in the recent events:\n${text}`);
    await shoot(page, 'overview');
  });

  test('names agents, services, API keys and members in the audit log instead of ids', async () => {
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByTestId('audit-entry').filter({ hasText: 'agent.enroll' }).first().waitFor();
    const rows = page.getByTestId('audit-entry');
    const row = async (action: string) => (await rows.filter({ hasText: action }).first().textContent()) ?? '';
    assert.match(await row('api_key.create'), new RegExp(`${email}.*${keyName}`, 'i'));
    assert.match(await row('agent.enroll'), new RegExp(`${keyName}.*${idleLabel}|${keyName}.*${agentLabel}`, 'i'));
    const exposed = (await rows.filter({ hasText: 'service.expose' }).allTextContents()).join('\n');
    assert.ok(exposed.includes('ov-db') && exposed.includes('ov-down') && exposed.includes(agentLabel), exposed);
    const table = (await page.locator('table').textContent()) ?? '';
    assert.ok(!UUID.test(table), `an id in the audit table: ${UUID.exec(table)?.[0]}`);
    // The id is still there for whoever needs it, on hover.
    assert.match((await page.getByTestId('audit-name').first().getAttribute('title')) ?? '', UUID);
  });

  test('narrows the agents and the services with the search box and the status filter', async () => {
    await page.getByRole('link', { name: 'Agents', exact: true }).click();
    const agents = page.getByTestId('agent');
    await agents.nth(1).waitFor();
    assert.equal(await agents.count(), 2);
    await page.getByRole('searchbox', { name: 'Search agents' }).fill('idle');
    await page.locator(`[data-testid="agent"][data-agent-label="${agentLabel}"]`).waitFor({ state: 'detached' });
    assert.deepEqual(await agents.evaluateAll((cards) => cards.map((c) => c.getAttribute('data-agent-label'))), [idleLabel]);
    assert.match((await page.getByTestId('filter-count').textContent()) ?? '', /1 of 2 agents/);
    await page.getByRole('searchbox', { name: 'Search agents' }).fill('');
    await page.getByRole('combobox', { name: 'Status' }).selectOption('online');
    await page.locator(`[data-testid="agent"][data-agent-label="${idleLabel}"]`).waitFor({ state: 'detached' });
    assert.deepEqual(await agents.evaluateAll((cards) => cards.map((c) => c.getAttribute('data-agent-label'))), [agentLabel]);

    await page.getByRole('link', { name: 'Services', exact: true }).click();
    const services = page.getByTestId('service');
    await services.nth(1).waitFor();
    await page.getByRole('searchbox', { name: 'Search services' }).fill('down');
    await page.locator('[data-testid="service"][data-service-name="ov-db"]').waitFor({ state: 'detached' });
    assert.deepEqual(await services.evaluateAll((cards) => cards.map((c) => c.getAttribute('data-service-name'))), ['ov-down']);
    await page.getByRole('searchbox', { name: 'Search services' }).fill('');
    await page.getByRole('combobox', { name: 'Status' }).selectOption('failing');
    await page.locator('[data-testid="service"][data-service-name="ov-db"]').waitFor({ state: 'detached' });
    assert.deepEqual(await services.evaluateAll((cards) => cards.map((c) => c.getAttribute('data-service-name'))), ['ov-down']);
    await page.getByRole('combobox', { name: 'Status' }).selectOption('offline');
    await page.getByText('No service matches this search.').waitFor();
    assert.equal(await services.count(), 0);
  });

  test('offers the workspace\'s services in the share form and shares the one ticked', async () => {
    await page.getByRole('link', { name: 'Shares' }).click();
    const offered = page.getByRole('group', { name: 'Services' }).getByRole('checkbox');
    await offered.nth(1).waitFor();
    // Each box is labelled by the service's name, then its status.
    const labels = await offered.evaluateAll((boxes) => boxes.map((box) => box.nextElementSibling?.textContent ?? ''));
    assert.deepEqual(labels.sort(), ['ov-db', 'ov-down']);
    await page.getByLabel('Share name').fill('ov-partner');
    await page.getByRole('checkbox', { name: /^ov-db/ }).check();
    await page.getByRole('button', { name: 'Create share' }).click();
    await page.getByTestId('new-share-code').waitFor();
    const card = page.locator('[data-testid="share"][data-share-name="ov-partner"]');
    await card.waitFor();
    assert.match((await card.textContent()) ?? '', /Servicesov-db(?!,)/);
  });

  test('offers the workspace\'s services in the public-link form', async () => {
    await page.getByRole('link', { name: 'Public links' }).click();
    const select = page.getByRole('combobox', { name: 'Service' });
    await select.locator('option[value="ov-db"]').waitFor({ state: 'attached' });
    const values = await select.locator('option').evaluateAll((options) => options.map((o) => o.getAttribute('value')));
    assert.deepEqual(values.filter(Boolean).sort(), ['ov-db', 'ov-down']);
    await select.selectOption('ov-db');
    await page.getByRole('button', { name: 'Create public link' }).click();
    await page.getByTestId('new-link-url').waitFor();
    assert.match((await page.getByTestId('link').first().textContent()) ?? '', /ov-db/);
  });

  test('keeps the header to one row of at most 64 px on a 375 px screen', async () => {
    await page.setViewportSize(NARROW);
    try {
      await page.goto(`${hub.webUrl}/`);
      await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
      const height = await page.evaluate<number>(`document.querySelector('header').getBoundingClientRect().height`);
      assert.ok(height <= 64, `the header is ${height} px tall at 375 px`);
      const nav = await page.evaluate<number>(`document.querySelector('nav').getBoundingClientRect().height`);
      assert.ok(nav <= 48, `the navigation is ${nav} px tall at 375 px`);
      assert.ok((await page.evaluate<number>('document.documentElement.scrollWidth')) <= NARROW.width, 'the page scrolls sideways');
      // Sign out and the email are one tap away, in the account menu.
      await page.locator('.account summary').click();
      await page.locator('.account .menu').getByText(email).waitFor();
      await page.getByRole('button', { name: 'Sign out' }).waitFor();
      // Escape closes the menu and gives focus back to its button.
      await page.keyboard.press('Escape');
      await page.getByRole('button', { name: 'Sign out' }).waitFor({ state: 'hidden' });
      assert.equal(await page.evaluate<string>(`document.activeElement.closest('.account') ? 'menu' : document.activeElement.tagName`), 'menu');
    } finally {
      await page.setViewportSize(WIDE);
    }
  });

  test('shows the traffic now on the overview while bytes flow through a tunnel', async () => {
    await page.goto(`${hub.webUrl}/`);
    const traffic = page.getByTestId('overview-traffic');
    await traffic.waitFor();
    const reached = await agent!.reach('ov-db');
    const socket = await connect(reached.port);
    let flowing = true;
    socket.on('data', () => undefined); // the echo comes back; read it so the tunnel keeps moving
    const chunk = Buffer.alloc(64 * 1024, 'o');
    const pump = (async () => {
      while (flowing) {
        if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    try {
      await traffic.and(page.locator('[data-streams="1"]')).waitFor({ timeout: 20_000 });
      await traffic.getByTestId('throughput').and(page.locator(':not([data-rate="0"])')).waitFor({ timeout: 20_000 });
      assert.match((await traffic.textContent()) ?? '', /[\d.]+ (KiB|MiB)\/s/);
      assert.match((await traffic.textContent()) ?? '', /1 open stream\b/);
      await shoot(page, 'overview-traffic');
    } finally {
      flowing = false;
      await pump;
      socket.destroy();
      await reached.proc.stop();
    }
  });

  test('shows the agent and its services go offline on the overview when its processes end', async () => {
    await page.goto(`${hub.webUrl}/`);
    await page.getByTestId('overview-agents').and(page.locator('[data-online="1"]')).waitFor({ timeout: 15_000 });
    await down?.stop();
    await healthy?.stop();
    down = healthy = undefined;
    await page.getByTestId('overview-agents').and(page.locator('[data-online="0"][data-total="2"]')).waitFor({ timeout: 15_000 });
    await service('ov-db').and(page.locator('[data-status="offline"]')).waitFor({ timeout: 15_000 });
    assert.match((await service('ov-db').textContent()) ?? '', /not connected/);
  });
});
