/**
 * What `connect daemon install` writes: a systemd unit (Linux) or a launchd plist (macOS) that runs
 * `node <cli> daemon run` at boot or login, restarts it when it fails, and hands it CONNECT_HOME and CONNECT_HUB_URL.
 */

import { homedir } from 'node:os';
import { join } from 'node:path';

export type ServicePlatform = 'linux' | 'macos';
export type ServiceScope = 'user' | 'system';

/** The launchd label and plist name; the systemd unit is connect.service. */
export const LAUNCHD_LABEL = 'co.privateconnect.connect';
export const SYSTEMD_UNIT = 'connect.service';

export interface ServiceSpec {
  /** Absolute path of the node binary. */
  node: string;
  /** Absolute path of the CLI entry (dist/src/main.js, bin/connect.js or connect.mjs). */
  entry: string;
  /** CONNECT_HOME and CONNECT_HUB_URL, plus whatever else the daemon needs (CONNECT_ALLOW_INSECURE, NODE_EXTRA_CA_CERTS). */
  env: Record<string, string>;
  /** The config folder: launchd writes the daemon's stdout and stderr to daemon.log there. */
  home: string;
  /** A system unit runs as this user (systemd User=); undefined runs it as root. */
  user?: string;
}

/** Where the service file goes, under `root` ('/' for real, a temp folder in tests). */
export function serviceFilePath(platform: ServicePlatform, scope: ServiceScope, root = '/', home = homedir()): string {
  if (platform === 'linux') return scope === 'user' ? join(root, home, '.config/systemd/user', SYSTEMD_UNIT) : join(root, '/etc/systemd/system', SYSTEMD_UNIT);
  return scope === 'user' ? join(root, home, 'Library/LaunchAgents', `${LAUNCHD_LABEL}.plist`) : join(root, '/Library/LaunchDaemons', `${LAUNCHD_LABEL}.plist`);
}

/** systemd quoting: double quotes with \ and " escaped; % doubled (systemd expands %-specifiers). */
function systemdQuote(value: string): string {
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('%', '%%')}"`;
}

export function systemdUnit(spec: ServiceSpec, scope: ServiceScope): string {
  return [
    '# Written by `connect daemon install`; remove with `connect daemon uninstall`.',
    '[Unit]',
    'Description=Private Connect agent (connect daemon run)',
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${[spec.node, spec.entry, 'daemon', 'run'].map(systemdQuote).join(' ')}`,
    ...Object.entries(spec.env).map(([name, value]) => `Environment=${systemdQuote(`${name}=${value}`)}`),
    ...(scope === 'system' && spec.user ? [`User=${spec.user}`] : []),
    'Restart=on-failure',
    'RestartSec=5',
    '',
    '[Install]',
    `WantedBy=${scope === 'user' ? 'default.target' : 'multi-user.target'}`,
    '',
  ].join('\n');
}

const xml = (value: string) => value.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');

export function launchdPlist(spec: ServiceSpec): string {
  const log = join(spec.home, 'daemon.log');
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<!-- Written by `connect daemon install`; remove with `connect daemon uninstall`. -->',
    '<plist version="1.0">',
    '<dict>',
    `  <key>Label</key><string>${LAUNCHD_LABEL}</string>`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    ...[spec.node, spec.entry, 'daemon', 'run'].map((arg) => `    <string>${xml(arg)}</string>`),
    '  </array>',
    '  <key>EnvironmentVariables</key>',
    '  <dict>',
    ...Object.entries(spec.env).map(([name, value]) => `    <key>${xml(name)}</key><string>${xml(value)}</string>`),
    '  </dict>',
    '  <key>RunAtLoad</key><true/>',
    '  <key>KeepAlive</key><true/>',
    '  <key>ThrottleInterval</key><integer>5</integer>',
    `  <key>StandardOutPath</key><string>${xml(log)}</string>`,
    `  <key>StandardErrorPath</key><string>${xml(log)}</string>`,
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}
