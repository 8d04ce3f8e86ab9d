/** homeAgentOptions: the one mapping from a config folder to AgentOptions, shared by the CLI and reach()/expose(). */

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConnectError } from '@private-connect/protocol';
import { DEFAULT_BACKOFF, homeAgentOptions, identityPath, knownAgentsPath, portsPath, readConfig, writeConfig, type AgentConfig } from '../src/index.js';

const config: AgentConfig = {
  hubUrl: 'https://hub.example.com',
  agentId: '00000000-0000-4000-8000-000000000001',
  workspaceId: '00000000-0000-4000-8000-000000000002',
  label: 'laptop',
  token: 'f'.repeat(64),
  tokenExpiresAt: '2030-01-01T00:00:00.000Z',
};

describe('homeAgentOptions', () => {
  let home: string;
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'pc-home-options-'));
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });

  test('takes the hub, token and label from the config and every file from the folder', () => {
    const options = homeAgentOptions(home, config, { allowInsecure: true, reconnectMaxMs: 500 });
    assert.deepEqual(
      [options.hubUrl, options.token, options.label, options.portsFile, options.identityFile, options.knownAgentsFile, options.allowInsecure],
      [config.hubUrl, config.token, 'laptop', portsPath(home), identityPath(home), knownAgentsPath(home), true],
    );
    assert.deepEqual(options.backoff, { ...DEFAULT_BACKOFF, maxMs: 500 });
    assert.equal(homeAgentOptions(home, config).backoff?.maxMs, 30_000, 'the default cap');
  });

  test('saves a rotated token to config.json and keeps the rest of the file as it is now', async () => {
    await writeConfig(home, { ...config, label: 'renamed meanwhile' });
    await homeAgentOptions(home, config).onToken?.('n'.repeat(64), '2031-01-01T00:00:00.000Z');
    assert.deepEqual(await readConfig(home), { ...config, label: 'renamed meanwhile', token: 'n'.repeat(64), tokenExpiresAt: '2031-01-01T00:00:00.000Z' });
  });

  test('refuses to save a rotated token into a folder whose config.json is gone (NOT_ENROLLED)', async () => {
    const empty = join(home, 'empty');
    await assert.rejects(
      Promise.resolve(homeAgentOptions(empty, config).onToken?.('n'.repeat(64), '2031-01-01T00:00:00.000Z')),
      (err: unknown) => err instanceof ConnectError && err.code === 'NOT_ENROLLED',
    );
    assert.equal(await readConfig(empty), undefined);
  });
});
