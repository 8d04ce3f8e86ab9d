/**
 * `connect up --hub URL` without an API key: the real CLI prints a user code, a signed-in member approves it over
 * the HTTP API, and the CLI saves an agent token for the approved workspace. The test has no terminal, so it passes
 * --device (without it, `connect up` refuses at once: cli-answers.test.ts).
 */

import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createLogger, loadConfig, startHub, type Hub } from '@private-connect/hub';
import { CONNECT_MAIN, tempDir } from '../src/harness.js';
import { startProcess } from '../src/processes.js';

describe('connect up by device code', () => {
  let hub: Hub;
  let dataDir: string;
  const printed: string[] = [];
  before(async () => {
    dataDir = await tempDir('device-hub');
    const config = loadConfig({ HUB_PORT: '0', WEB_PORT: '0', HUB_HOST: '127.0.0.1', HUB_DATA_DIR: dataDir, LOG_LEVEL: 'warn' });
    const console = new Writable({
      write(chunk: Buffer | string, _encoding, callback) {
        printed.push(chunk.toString());
        callback();
      },
    });
    hub = await startHub(config, { logger: createLogger('warn', new Writable({ write: (_c, _e, cb) => cb() })), console });
  });
  after(async () => {
    await hub?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function signIn(email: string): Promise<{ cookie: string; workspaceId: string }> {
    await fetch(`${hub.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email }) });
    const line = [...printed].reverse().find((l) => l.includes(` link for ${email}: `))!;
    const link = new URL(line.trim().split(' ').pop()!);
    const res = await fetch(`${hub.url}/v1/auth/verify?token=${link.searchParams.get('token')}`, { method: 'POST' });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { workspaceId: string };
    return { cookie: res.headers.getSetCookie()[0]!.split(';')[0]!, workspaceId: body.workspaceId };
  }

  test('enrols into the workspace the member approved, and the saved token works', async () => {
    const user = await signIn('device-owner@example.com');
    const home = await tempDir('device-agent');
    try {
      const proc = startProcess(process.execPath, [CONNECT_MAIN, '--json', 'up', '--hub', hub.url, '--label', 'laptop', '--device'], { CONNECT_HOME: home, NO_COLOR: '1' }, 'connect up (device)');
      const shown = await proc.waitFor((l) => l.type === 'device_code', 20_000, 'the device code');
      // The device page on the dashboard URL the banner prints (public-urls.ts), where the member is signed in.
      assert.equal(shown.verificationUri, `${hub.dashboardUrl}/device`);
      const approve = await fetch(`${hub.url}/v1/device/approve`, {
        method: 'POST',
        // The approval a browser sends from the hub's own page: its Origin goes with it.
        headers: { 'content-type': 'application/json', cookie: user.cookie, origin: hub.url },
        body: JSON.stringify({ user_code: shown.userCode }),
      });
      assert.equal(approve.status, 200);
      assert.equal(await proc.exited, 0, proc.stderr());
      const config = JSON.parse(await readFile(join(home, 'config.json'), 'utf8')) as { token: string; workspaceId: string; label: string };
      assert.equal(config.workspaceId, user.workspaceId);
      assert.equal(config.label, 'laptop');
      const me = await fetch(`${hub.url}/v1/me`, { headers: { authorization: `Bearer ${config.token}` } });
      assert.deepEqual(((await me.json()) as { kind: string; workspaceId: string }).workspaceId, user.workspaceId);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
