/**
 * Runs the webhook-link script as a real process against a real hub process, with the config folder `connect up`
 * wrote: the webhook goes through the public link (200), and the revoked link refuses (410 PUBLIC_LINK_GONE).
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import type { AuditEntry, LinkInfo } from '@private-connect/api';
import { ApiClient, readConfig, writeConfig } from '@private-connect/sdk';
import { enrolAgent, eventually, removeDirs, startHubProcess, tempDir, type AgentHome, type HubProcess } from '@private-connect/e2e';
import type { WebhookLinkResult } from '../src/webhook-link.js';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

describe('the webhook-link example', () => {
  let hub: HubProcess;
  let agent: AgentHome;

  before(async () => {
    hub = await startHubProcess();
    agent = await enrolAgent(hub, { label: 'webhook-host' });
  });

  after(async () => {
    await hub?.stop();
    await removeDirs(hub?.dataDir, agent?.home);
  });

  test('delivers a webhook through the public link, then the revoked link answers 410 PUBLIC_LINK_GONE', async () => {
    const { stdout } = await run(process.execPath, [MAIN, '--name', 'github-hooks'], { env: { ...process.env, CONNECT_HOME: agent.home }, timeout: 60_000 });
    const lines = stdout.trim().split('\n');
    const result = JSON.parse(lines.at(-1)!) as WebhookLinkResult;
    assert.equal(result.service, 'github-hooks');
    assert.ok(result.url.startsWith(`${hub.url}/l/`), result.url);
    assert.equal(result.deliveredStatus, 200);
    assert.equal(result.delivered.method, 'POST');
    assert.equal(result.delivered.path, '/hooks/deploy');
    assert.equal((result.delivered.body as { event?: string }).event, 'deploy.finished');
    assert.equal(result.revokedStatus, 410);
    assert.equal(result.revokedCode, 'PUBLIC_LINK_GONE');
    assert.ok(lines.some((l) => l.startsWith('revoked link ')), stdout);

    // The hub agrees: the link is revoked, and its audit log has the delivery (200) and the refusal (410).
    const admin = new ApiClient({ hubUrl: hub.url, credential: hub.apiKey });
    const link = (await admin.links()).find((l: LinkInfo) => l.id === result.linkId);
    assert.equal(link?.state, 'revoked');
    await eventually(async () => {
      const { events } = await admin.audit({ action: 'link.access' });
      const statuses = events.filter((e: AuditEntry) => e.targetId === result.linkId).map((e) => e.metadata.status);
      assert.deepEqual(statuses.sort(), [200, 410]);
    });
  });

  test('a wrong agent token makes the script exit 1 with UNAUTHORIZED, and no link is made', async () => {
    const config = (await readConfig(agent.home))!;
    const home = await tempDir('webhook-wrong-token');
    try {
      await writeConfig(home, { ...config, token: config.token.slice(0, -6) + (config.token.endsWith('AAAAAA') ? 'BBBBBB' : 'AAAAAA') });
      const failed = await run(process.execPath, [MAIN, '--name', 'never-linked'], { env: { ...process.env, CONNECT_HOME: home }, timeout: 60_000 }).then(
        () => assert.fail('expected the script to fail'),
        (err: { code?: number; stderr?: string }) => err,
      );
      assert.equal(failed.code, 1);
      assert.match(failed.stderr ?? '', /webhook-link failed: UNAUTHORIZED/);
      const admin = new ApiClient({ hubUrl: hub.url, credential: hub.apiKey });
      assert.ok(!(await admin.links()).some((l) => l.service === 'never-linked'));
    } finally {
      await removeDirs(home);
    }
  });
});
