/**
 * Managing a workspace in the dashboard, in chromium against real hub and agent processes: an API key made with
 * the keyboard alone; a running agent's token rotated from the page (the agent saves it and stays connected) and
 * the agent revoked (its process stops); the expiry shown in the warning colour only within 7 days; a live
 * throughput chart that moves with real traffic; a public link created, used with fetch and revoked (410); the
 * audit log filtered by agent and time and exported as JSON lines; a member invited by the link the hub prints, who
 * sees the workspace and loses it when removed; pending invitations listed and revoked with a button (the link is
 * then refused), a removed member's older invitation gone from the list and refused; and no page wider than a 375 px
 * screen.
 * Runs only with `npm run test:browser`.
 */

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { enrolAgent, removeDirs, startHubProcess, type AgentHome, type HubProcess, type Proc } from '../src/index.js';
import { NARROW, WIDE, followLink, launchChromium, pageApi, printedLink, shoot, signIn } from '../src/browser.js';

/** The dashboard's --warn colour (#9a6700). */
const WARN_RGB = 'rgb(154, 103, 0)';
const BODY = Buffer.alloc(256 * 1024, 'x');

async function tokenOf(agent: AgentHome): Promise<string> {
  return (JSON.parse(await readFile(join(agent.home, 'config.json'), 'utf8')) as { token: string }).token;
}

/** The computed text colour of the element `selector` finds. */
function colorOf(page: Page, selector: string): Promise<string> {
  return page.evaluate<string>(`getComputedStyle(document.querySelector(${JSON.stringify(selector)})).color`);
}

async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('managing the workspace in the dashboard (chromium)', () => {
  let hub: HubProcess;
  let browser: Browser;
  let owner: BrowserContext;
  let page: Page;
  let app: Server;
  let appPort = 0;
  let agent: AgentHome | undefined;
  let expose: Proc | undefined;
  let reach: Proc | undefined;
  let apiKey = '';
  let agentId = '';
  const agentLabel = 'managed-agent';
  const service = 'managed-web';
  const card = () => page.locator(`[data-testid="agent"][data-agent-label="${agentLabel}"]`);

  before(async () => {
    hub = await startHubProcess();
    app = createServer((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(req.url === '/big' ? BODY : `hello from ${req.url}`);
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appPort = (app.address() as { port: number }).port;
    browser = await launchChromium();
    owner = await browser.newContext({ viewport: WIDE, acceptDownloads: true });
    page = await signIn(hub, owner, 'manager@example.test');
    page.on('dialog', (dialog) => void dialog.accept());
  });

  after(async () => {
    await reach?.stop();
    await expose?.stop();
    await browser?.close();
    await new Promise((resolve) => app?.close(resolve));
    await hub?.stop();
    await removeDirs(hub?.dataDir, agent?.home);
  });

  test('creates an API key with the keyboard alone, focus visible at every step', async () => {
    await page.getByRole('heading', { name: 'Getting started' }).waitFor();
    const focused = () => page.evaluate<{ text: string; tag: string; label: string; outline: string }>(
      `(() => { const el = document.activeElement; const style = getComputedStyle(el);
        return { text: (el.textContent || '').trim(), tag: el.tagName, label: el.labels?.[0]?.textContent?.trim() ?? '', outline: style.outlineStyle + ' ' + style.outlineWidth }; })()`,
    );
    let reached = false;
    for (let i = 0; i < 40 && !reached; i++) {
      await page.keyboard.press('Tab');
      const now = await focused();
      if (now.tag === 'BODY') continue; // focus between the page and the browser's own controls
      assert.notEqual(now.outline.split(' ')[0], 'none', `no visible focus on ${now.tag} "${now.text}"`);
      reached = now.tag === 'A' && now.text === 'API keys';
    }
    assert.ok(reached, 'Tab never reached the API keys link');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/keys$/);
    for (let i = 0; i < 20 && (await focused()).label !== 'Key name'; i++) await page.keyboard.press('Tab');
    assert.equal((await focused()).label, 'Key name');
    await page.keyboard.type('keyboard key');
    await page.keyboard.press('Enter');
    apiKey = (await page.getByTestId('new-api-key').textContent()) ?? '';
    assert.match(apiKey, /^pc_/);
    // Tab reaches the one-time secret's Done button; Enter dismisses it.
    for (let i = 0; i < 10 && (await focused()).text !== 'Done'; i++) await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    assert.equal(await page.getByTestId('new-api-key').count(), 0);
  });

  test('shows the token expiry of a fresh agent without the warning colour', async () => {
    agent = await enrolAgent({ url: hub.webUrl!, apiKey }, { label: agentLabel });
    agentId = (JSON.parse(await readFile(join(agent.home, 'config.json'), 'utf8')) as { agentId: string }).agentId;
    expose = await agent.expose(`127.0.0.1:${appPort}`, service, ['--http']);
    await page.getByRole('link', { name: 'Agents' }).click();
    const expiry = card().and(page.locator('[data-online="true"]')).getByTestId('token-expiry');
    await expiry.waitFor();
    assert.equal(await expiry.getAttribute('data-expiring'), 'false');
    assert.notEqual(await colorOf(page, `[data-agent-label="${agentLabel}"] [data-testid="token-expiry"]`), WARN_RGB);
    assert.match((await expiry.textContent()) ?? '', /in 30 days/);
  });

  test('rotates the running agent\'s token: the agent saves the new one and stays online', async () => {
    const before = await tokenOf(agent!);
    await card().getByRole('button', { name: `Rotate token of ${agentLabel}` }).click();
    await page.getByTestId('agents-notice').filter({ hasText: 'has a new token' }).waitFor();
    const after = await until('the rotated token in config.json', async () => {
      const token = await tokenOf(agent!);
      return token !== before && token;
    });
    await expose!.waitFor((l) => l.type === 'token_rotated' && l.saved === true, 10_000, 'token_rotated event');
    assert.ok(!expose!.lines.some((l) => JSON.stringify(l).includes(after)), 'the agent printed its new token');
    const me = await fetch(`${hub.url}/v1/me`, { headers: { authorization: `Bearer ${after}` } });
    assert.equal(me.status, 200);
    assert.equal(await card().getAttribute('data-online'), 'true');
    assert.equal(expose!.child.exitCode, null, 'the agent process ended');
  });

  test('draws live throughput for the service while traffic flows through a tunnel', async () => {
    const reached = await agent!.reach(service);
    reach = reached.proc;
    await page.getByRole('link', { name: 'Services' }).click();
    const chart = page.locator(`[data-testid="service"][data-service-name="${service}"]`).getByTestId('throughput');
    await chart.waitFor();
    let stop = false;
    const traffic = (async () => {
      while (!stop) {
        const res = await fetch(`http://127.0.0.1:${reached.port}/big`);
        assert.equal((await res.arrayBuffer()).byteLength, BODY.length);
      }
    })();
    try {
      await until('a non-zero rate on the chart', async () => Number(await chart.getAttribute('data-rate')) > 0, 20_000);
      assert.match((await chart.getByRole('img').getAttribute('aria-label')) ?? '', new RegExp(`Throughput of ${service}: [\\d.]+ (KiB|MiB)/s now`));
    } finally {
      stop = true;
      await traffic;
    }
    // The exposing agent's check of its target (an HTTP server here).
    const health = page.locator(`[data-testid="service"][data-service-name="${service}"]`).getByTestId('health');
    await health.and(page.locator('[data-ok="true"]')).waitFor({ timeout: 20_000 });
    assert.match((await health.textContent()) ?? '', /✓ healthy/);
    await shoot(page, 'services-throughput');
    // Quiet again: the rate falls back to zero without any request from the page.
    await until('the rate back at zero', async () => (await chart.getAttribute('data-rate')) === '0', 20_000);
  });

  test('shows a service whose target is down as failing, live, with the reason', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as { port: number }).port;
    await new Promise((resolve) => closed.close(resolve));
    const down = await agent!.expose(`127.0.0.1:${port}`, 'down-svc', ['--check-interval', '1']);
    try {
      const health = page.locator('[data-testid="service"][data-service-name="down-svc"]').getByTestId('health');
      await health.and(page.locator('[data-ok="false"]')).waitFor({ timeout: 20_000 });
      await health.locator('summary').click();
      const text = (await health.textContent()) ?? '';
      assert.match(text, /✗ tcp/);
      assert.match(text, /ECONNREFUSED/);
      assert.match(text, /start the service on the exposing machine/);
      await shoot(page, 'services-health');
    } finally {
      await down.stop();
    }
  });

  test('creates a public link, the URL answers, and after Revoke it answers 410', async () => {
    await page.getByRole('link', { name: 'Public links' }).click();
    await page.getByText('No public links yet.').waitFor();
    await page.getByRole('combobox', { name: 'Service', exact: false }).selectOption(service);
    await page.getByRole('button', { name: 'Create public link' }).click();
    const url = (await page.getByTestId('new-link-url').textContent()) ?? '';
    assert.match(url, /\/l\/[A-Za-z0-9_-]+\/?$/);
    const through = await fetch(new URL('hello', url.endsWith('/') ? url : `${url}/`));
    assert.equal(through.status, 200);
    assert.equal(await through.text(), 'hello from /hello');
    const link = page.locator('[data-testid="link"]');
    await link.and(page.locator('[data-state="active"]')).waitFor();
    assert.ok(!((await link.textContent()) ?? '').includes(url.split('/l/')[1]!.replace(/\/$/, '')), 'the list shows the whole token');
    await shoot(page, 'links');
    await link.getByRole('button', { name: /revoke/i }).click();
    await link.and(page.locator('[data-state="revoked"]')).waitFor();
    assert.equal((await fetch(url)).status, 410);
  });

  test('filters the audit log by agent and time range, and exports the matches as JSON lines', async () => {
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByTestId('audit-entry').first().waitFor();
    // The label's text includes its options' (the Actor type select offers "agent" too): find it by its caption.
    await page.locator('label', { hasText: /^Agent/ }).locator('select').selectOption({ label: agentLabel });
    const hourAgo = new Date(Date.now() - 3_600_000 - new Date().getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
    await page.getByLabel('From').fill(hourAgo);
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByTestId('audit-entry').filter({ hasText: 'agent.token_rotate' }).waitFor();
    // Every entry is by the agent or about it, named by its label.
    await until('only entries of the agent', async () => (await page.getByTestId('audit-entry').allTextContents()).every((row) => row.includes(agentLabel)));
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: /export all matching/i }).click()]);
    assert.match(download.suggestedFilename(), /^audit-.*\.jsonl$/);
    const lines = (await readFile((await download.path())!, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { action: string; actorId: string | null; targetId: string | null });
    assert.ok(lines.length >= 3, `only ${lines.length} lines exported`);
    assert.ok(lines.every((e) => e.actorId === agentId || e.targetId === agentId), 'an exported entry is not about the agent');
    for (const action of ['agent.enroll', 'agent.connect', 'agent.token_rotate']) assert.ok(lines.some((e) => e.action === action), `no ${action} in the export`);
    // A range that ended before anything happened matches nothing.
    await page.getByLabel('From').fill('');
    await page.getByLabel('Until').fill('2001-01-01T00:00');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('No audit entries match.').waitFor();
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.getByTestId('audit-entry').first().waitFor();
  });

  test('invites a member by the printed link; they see the workspace, read-only, until removed', async () => {
    const email = 'invitee@example.test';
    await page.getByRole('link', { name: 'Members' }).click();
    await page.getByLabel('Email').fill(email);
    const from = hub.proc.stderr().length;
    await page.getByRole('button', { name: 'Send invitation' }).click();
    await page.getByText(`Invitation sent to ${email}.`).waitFor();
    const link = await printedLink(hub, email, from);
    const guest = await browser.newContext({ viewport: WIDE });
    try {
      const tab = await guest.newPage();
      const next = new URL(link).searchParams.get('next') ?? '/';
      await followLink(tab, hub, link, next);
      const ownerWorkspace = (await pageApi(page, 'GET', '/v1/workspaces')).body.workspaces[0].name as string;
      const switcher = tab.getByTestId('workspace-switcher');
      await switcher.waitFor();
      const options = await switcher.locator('option').allTextContents();
      assert.ok(options.some((o) => o.startsWith(ownerWorkspace)), `the invitee's switcher offers ${options.join(', ')}`);
      await switcher.selectOption({ label: options.find((o) => o.startsWith(ownerWorkspace))! });
      // A member's overview: the agents and services, and a word instead of the events only admins may read.
      await tab.getByRole('link', { name: 'Overview', exact: true }).click();
      await tab.locator(`[data-testid="overview-agent"][data-agent-label="${agentLabel}"]`).waitFor();
      await tab.getByText('Owners and admins of this workspace see its events.').waitFor();
      await tab.getByRole('link', { name: 'Agents', exact: true }).click();
      const seen = tab.locator(`[data-testid="agent"][data-agent-label="${agentLabel}"]`);
      await seen.waitFor();
      assert.equal(await seen.getByRole('button').count(), 0, 'a member is offered rotate or revoke');

      await page.reload(); // the owner's list was loaded before the invitee joined
      const member = page.locator(`[data-testid="member"][data-email="${email}"]`);
      await member.getByRole('button', { name: `Remove ${email}` }).click();
      await member.waitFor({ state: 'detached' });
      await tab.reload();
      await tab.getByTestId('workspace-switcher').waitFor();
      const left = await tab.getByTestId('workspace-switcher').locator('option').allTextContents();
      assert.ok(!left.some((o) => o.startsWith(ownerWorkspace)), `still offered after removal: ${left.join(', ')}`);
      assert.ok(!((await tab.locator('body').textContent()) ?? '').includes(agentLabel), 'the removed member still sees the agent');
    } finally {
      await guest.close();
    }
  });

  test('lists pending invitations and revokes one with its button; a removed member’s older invitation goes too, and both links are refused', async () => {
    /** What the hub answers the printed link's token (the verify page's POST), from outside the browser. */
    const accept = async (link: URL) => {
      const res = await fetch(`${hub.url}/v1/auth/verify?token=${encodeURIComponent(link.searchParams.get('token')!)}`, { method: 'POST', headers: { origin: hub.url } });
      return { status: res.status, body: (await res.json()) as { error?: { code: string }; userId?: string } };
    };
    const invite = async (email: string) => {
      await page.getByLabel('Email').fill(email);
      const from = hub.proc.stderr().length;
      await page.getByRole('button', { name: 'Send invitation' }).click();
      await page.getByText(`Invitation sent to ${email}.`).waitFor();
      return printedLink(hub, email, from);
    };
    const row = (email: string) => page.locator(`[data-testid="invitation"][data-email="${email}"]`);
    await page.getByRole('link', { name: 'Members' }).click();

    const withdrawn = 'withdrawn@example.test';
    const withdrawnLink = await invite(withdrawn);
    await row(withdrawn).waitFor();
    await row(withdrawn).getByRole('button', { name: `Revoke the invitation of ${withdrawn}` }).click();
    await row(withdrawn).waitFor({ state: 'detached' });
    // What the invitee sees: the sign-in page's button leads to a page that says the invitation was revoked.
    const guest = await browser.newContext({ viewport: WIDE });
    try {
      const tab = await guest.newPage();
      await tab.goto(`${hub.webUrl}${withdrawnLink.pathname}${withdrawnLink.search}`);
      await tab.getByRole('button', { name: 'Sign in' }).click();
      await tab.getByText(/this invitation was revoked/).waitFor();
      assert.ok(!(await guest.cookies()).some((c) => c.name.includes('session')), 'a session was opened');
    } finally {
      await guest.close();
    }
    const refused = await accept(withdrawnLink);
    assert.equal(refused.status, 410, JSON.stringify(refused.body));
    assert.equal(refused.body.error?.code, 'INVITATION_REVOKED');

    const bob = 'comeback@example.test';
    const older = await invite(bob);
    const newer = await invite(bob);
    await until('both invitations to bob in the list', async () => (await row(bob).count()) === 2);
    const joined = await accept(newer);
    assert.equal(joined.status, 200, JSON.stringify(joined.body));
    await page.reload(); // the lists were loaded before bob joined
    await page.locator(`[data-testid="member"][data-email="${bob}"]`).getByRole('button', { name: `Remove ${bob}` }).click();
    await page.locator(`[data-testid="member"][data-email="${bob}"]`).waitFor({ state: 'detached' });
    await until('the older invitation to leave the list', async () => (await row(bob).count()) === 0);
    const comeback = await accept(older);
    assert.equal(comeback.status, 410, JSON.stringify(comeback.body));
    assert.equal(comeback.body.error?.code, 'INVITATION_REVOKED');
    const members = await pageApi(page, 'GET', `/v1/workspaces/${(await pageApi(page, 'GET', '/v1/me')).body.workspaceId}/members`);
    assert.ok(!members.body.members.some((m: { email: string }) => m.email === bob), 'the removed member came back');
  });

  test('fits a 375 px screen on every page: nothing scrolls sideways', async () => {
    await page.setViewportSize(NARROW);
    try {
      for (const name of ['Agents', 'Services', 'API keys', 'Shares', 'Public links', 'Audit log', 'Members', 'Getting started']) {
        await page.getByRole('link', { name, exact: true }).click();
        await page.getByRole('heading', { level: 1 }).waitFor();
        const width = await page.evaluate<number>('document.documentElement.scrollWidth');
        assert.ok(width <= NARROW.width, `${name} is ${width} px wide at 375 px`);
      }
    } finally {
      await page.setViewportSize(WIDE);
    }
  });

  test('revokes the agent: its card goes, its process stops, its token is refused', async () => {
    const token = await tokenOf(agent!);
    await page.getByRole('link', { name: 'Agents' }).click();
    await card().getByRole('button', { name: `Revoke ${agentLabel}` }).click();
    await card().waitFor({ state: 'detached' });
    await page.getByTestId('agents-notice').filter({ hasText: 'was revoked' }).waitFor();
    const code = await Promise.race([expose!.exited, new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
    assert.notEqual(code, 'still running');
    assert.notEqual(code, 0);
    expose = undefined;
    assert.equal((await fetch(`${hub.url}/v1/me`, { headers: { authorization: `Bearer ${token}` } })).status, 401);
  });
});

describe('token expiry within 7 days (chromium, AGENT_TOKEN_TTL=5d)', () => {
  let hub: HubProcess;
  let browser: Browser;
  let agent: AgentHome | undefined;

  before(async () => {
    hub = await startHubProcess({ env: { AGENT_TOKEN_TTL: '5d' } });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
    await removeDirs(hub?.dataDir, agent?.home);
  });

  test('shows the expiry in the warning colour with a hint to rotate', async () => {
    const context = await browser.newContext({ viewport: WIDE });
    const page = await signIn(hub, context, 'short@example.test', '/agents');
    const key = await pageApi(page, 'POST', '/v1/api-keys', { name: 'short-lived agents' });
    assert.equal(key.status, 201);
    agent = await enrolAgent({ url: hub.webUrl!, apiKey: key.body.key }, { label: 'short-agent' });
    await page.reload();
    const expiry = page.locator('[data-testid="agent"][data-agent-label="short-agent"]').getByTestId('token-expiry');
    await expiry.waitFor();
    assert.equal(await expiry.getAttribute('data-expiring'), 'true');
    assert.equal(await colorOf(page, '[data-agent-label="short-agent"] [data-testid="token-expiry"]'), WARN_RGB);
    assert.match((await expiry.textContent()) ?? '', /\(in 5 days\) · rotate it soon/);
    await shoot(page, 'agents-expiring');
    await context.close();
  });
});
