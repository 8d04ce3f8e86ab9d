/**
 * OpenSSH reverse forwarding as a peer of the relay: a private sshd (Debian's openssh-server binary, run in the
 * foreground as the current user with a temp host key and a temp authorized key) and one `ssh -N -R` client that
 * forwards ports on the sshd side to the targets, the way a user would publish a local service through a server.
 */

import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, startProcess, type Proc } from '@private-connect/e2e';
import { haveCommand, stopTree, waitListening } from './peer-procs.js';

export const SSHD = '/usr/sbin/sshd';

/** Why the ssh way cannot run here, or undefined when it can. */
export function sshMissing(): string | undefined {
  const missing = [SSHD, 'ssh', 'ssh-keygen'].filter((c) => !haveCommand(c));
  return missing.length > 0 ? `${missing.join(', ')} not installed (apt-get install openssh-server openssh-client)` : undefined;
}

export interface SshForward {
  /** Where clients connect, one per target, in the order of the targets (on the sshd side). */
  ports: number[];
  /** sshd (its per-connection children included by the caller's tree walk) and the ssh client. */
  processes(): Array<{ role: string; pid: number }>;
  stop(): Promise<void>;
}

function sshdConfig(dir: string): string {
  return [
    'ListenAddress 127.0.0.1',
    `HostKey ${join(dir, 'host_key')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PidFile none',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // The temp folder is not a home directory; its permission checks would refuse the key.
    'StrictModes no',
    'AllowTcpForwarding yes',
    'GatewayPorts no',
    'LogLevel ERROR',
    '',
  ].join('\n');
}

/** Starts sshd and `ssh -R` for the targets; resolves once every forwarded port listens. */
export async function startSshForward(targets: number[]): Promise<SshForward> {
  const dir = await mkdtemp(join(tmpdir(), 'pc-bench-ssh-'));
  // The folder holds a private key: removed on stop, and on exit when the bench is interrupted.
  const removeOnExit = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeOnExit);
  const procs: Proc[] = [];
  const stop = async () => {
    for (const p of procs.reverse()) await stopTree(p);
    await rm(dir, { recursive: true, force: true });
    process.off('exit', removeOnExit);
  };
  try {
    for (const name of ['host_key', 'client_key']) {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `pc-bench-${name}`, '-f', join(dir, name)], { stdio: 'ignore' });
    }
    execFileSync('cp', [join(dir, 'client_key.pub'), join(dir, 'authorized_keys')]);
    writeFileSync(join(dir, 'sshd_config'), sshdConfig(dir));
    // sshd refuses to start without its privilege separation folder (normally made by the service unit).
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    const sshdPort = await freePort();
    const sshd = startProcess(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config'), '-p', String(sshdPort)], {}, 'sshd');
    procs.push(sshd);
    await waitListening(sshdPort, sshd, 'sshd');

    const ports = await Promise.all(targets.map(() => freePort()));
    const forwards = targets.flatMap((target, i) => ['-R', `${ports[i]}:127.0.0.1:${target}`]);
    const ssh = startProcess(
      'ssh',
      [
        '-N',
        '-F', '/dev/null',
        '-o', 'StrictHostKeyChecking=no',
        '-o', 'UserKnownHostsFile=/dev/null',
        '-o', 'BatchMode=yes',
        '-o', 'IdentitiesOnly=yes',
        '-o', 'ExitOnForwardFailure=yes',
        '-o', 'LogLevel=ERROR',
        '-i', join(dir, 'client_key'),
        '-p', String(sshdPort),
        ...forwards,
        `${userInfo().username}@127.0.0.1`,
      ],
      {},
      'ssh -R',
    );
    procs.push(ssh);
    for (const port of ports) await waitListening(port, ssh, 'ssh -R forward');
    return {
      ports,
      processes: () => [
        { role: 'sshd', pid: sshd.child.pid ?? -1 },
        { role: 'ssh', pid: ssh.child.pid ?? -1 },
      ],
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
