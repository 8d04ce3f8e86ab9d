/** `connect daemon install|uninstall|status --root DIR`: the systemd unit and launchd plist written by the built CLI. */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { launchdPlist, systemdUnit } from '../src/daemon/service-files.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

describe('connect daemon install into a temp root', () => {
  let home: string;
  let root: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'pc-daemon-home-'));
    root = await mkdtemp(join(tmpdir(), 'pc-daemon-root-'));
    env = { CONNECT_HOME: home, CONNECT_HUB_URL: '' };
    await mkdir(home, { recursive: true });
    const config = { hubUrl: 'https://hub.example.com', agentId: 'a1', workspaceId: 'w1', label: 'box', token: 't'.repeat(64), tokenExpiresAt: '2099-01-01T00:00:00Z' };
    await writeFile(join(home, 'config.json'), JSON.stringify(config));
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
    await rm(root, { recursive: true, force: true });
  });

  test('writes a systemd user unit that runs this CLI with CONNECT_HOME and CONNECT_HUB_URL, restarting on failure', async () => {
    const run = await cli(['--json', 'daemon', 'install', '--platform', 'linux', '--root', root], env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const result = JSON.parse(run.stdout) as { file: string; started: boolean; commands: string[] };
    assert.equal(result.file, join(root, homedir(), '.config/systemd/user/connect.service'));
    assert.equal(result.started, false, '--root never calls systemctl');
    assert.deepEqual(result.commands, ['systemctl --user daemon-reload', 'systemctl --user enable --now connect.service']);
    const unit = await readFile(result.file, 'utf8');
    const exec = /^ExecStart="([^"]+)" "([^"]+)" "daemon" "run"$/m.exec(unit);
    assert.ok(exec, unit);
    assert.equal(exec[1], process.execPath);
    assert.equal(exec[2], MAIN);
    assert.ok(existsSync(exec[1]!) && existsSync(exec[2]!), 'node and the CLI entry exist');
    assert.match(unit, new RegExp(`^Environment="CONNECT_HOME=${home}"$`, 'm'));
    assert.match(unit, /^Environment="CONNECT_HUB_URL=https:\/\/hub\.example\.com"$/m);
    assert.match(unit, /^Restart=on-failure$/m);
    assert.match(unit, /^WantedBy=default\.target$/m);

    const status = JSON.parse((await cli(['--json', 'daemon', 'status', '--platform', 'linux', '--root', root], env)).stdout) as { installed: boolean; running: boolean };
    assert.equal(status.installed, true);
    assert.equal(status.running, false);
  });

  test('--system writes /etc/systemd/system/connect.service for multi-user.target', async () => {
    const run = await cli(['--json', 'daemon', 'install', '--system', '--platform', 'linux', '--root', root], env);
    assert.equal(run.code, 0, run.stderr);
    const unit = await readFile(join(root, 'etc/systemd/system/connect.service'), 'utf8');
    assert.match(unit, /^WantedBy=multi-user\.target$/m);
    assert.match(unit, /^Environment="CONNECT_HOME=/m);
  });

  test('writes a launchd plist with KeepAlive, the CLI entry and the log in the config folder', async () => {
    const run = await cli(['--json', 'daemon', 'install', '--platform', 'macos', '--root', root], env);
    assert.equal(run.code, 0, run.stderr);
    const file = join(root, homedir(), 'Library/LaunchAgents/co.privateconnect.connect.plist');
    const plist = await readFile(file, 'utf8');
    assert.match(plist, /<key>Label<\/key><string>co\.privateconnect\.connect<\/string>/);
    assert.match(plist, new RegExp(`<string>${process.execPath}</string>\\s*<string>${MAIN}</string>\\s*<string>daemon</string>\\s*<string>run</string>`));
    assert.match(plist, /<key>KeepAlive<\/key><true\/>/);
    assert.match(plist, new RegExp(`<key>CONNECT_HOME</key><string>${home}</string>`));
    assert.match(plist, /<key>CONNECT_HUB_URL<\/key><string>https:\/\/hub\.example\.com<\/string>/);
    assert.match(plist, new RegExp(`<key>StandardOutPath</key><string>${join(home, 'daemon.log')}</string>`));
  });

  test('uninstall removes every unit and plist it wrote; a second uninstall has nothing to do', async () => {
    for (const platform of ['linux', 'macos']) {
      const run = await cli(['--json', 'daemon', 'uninstall', '--platform', platform, '--root', root], env);
      assert.equal(run.code, 0, run.stderr);
      assert.ok((JSON.parse(run.stdout) as { removed: string[] }).removed.length >= 1);
    }
    assert.equal(existsSync(join(root, homedir(), '.config/systemd/user/connect.service')), false);
    assert.equal(existsSync(join(root, 'etc/systemd/system/connect.service')), false);
    assert.equal(existsSync(join(root, homedir(), 'Library/LaunchAgents/co.privateconnect.connect.plist')), false);
    const again = await cli(['--json', 'daemon', 'uninstall', '--platform', 'linux', '--root', root], env);
    assert.deepEqual((JSON.parse(again.stdout) as { removed: string[] }).removed, []);
  });

  test('install without an enrolment is NOT_ENROLLED with the fix, and writes nothing', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'pc-daemon-empty-'));
    try {
      const run = await cli(['daemon', 'install', '--root', empty], { CONNECT_HOME: join(empty, 'home') });
      assert.equal(run.code, 1);
      assert.match(run.stderr, /^error: this machine is not connected to a hub yet .*run: connect up .*\(NOT_ENROLLED\)\n$/);
      assert.equal(existsSync(join(empty, homedir())), false);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});

describe('service file contents', () => {
  const spec = { node: '/opt/node 20/bin/node', entry: '/srv/100%/connect.mjs', env: { CONNECT_HOME: '/home/a b/.connect', CONNECT_HUB_URL: 'https://h' }, home: '/home/a b/.connect' };

  test('systemd: paths with spaces are quoted and % is doubled (systemd specifiers)', () => {
    const unit = systemdUnit(spec, 'user');
    assert.match(unit, /^ExecStart="\/opt\/node 20\/bin\/node" "\/srv\/100%%\/connect\.mjs" "daemon" "run"$/m);
    assert.match(unit, /^Environment="CONNECT_HOME=\/home\/a b\/\.connect"$/m);
  });

  test('launchd: values are XML-escaped', () => {
    const plist = launchdPlist({ ...spec, env: { CONNECT_HUB_URL: 'https://h/?a=1&b=<2>' } });
    assert.match(plist, /<string>https:\/\/h\/\?a=1&amp;b=&lt;2&gt;<\/string>/);
  });
});
