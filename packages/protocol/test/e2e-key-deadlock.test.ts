/**
 * The stream handshake must not deadlock node:crypto. Node 20's KeyObject.export({ format: 'jwk' }) holds the
 * key's mutex while it allocates; a garbage collection in that window that frees the job that generated the key
 * takes the same mutex, and the process hangs for good with its main thread in futex_wait (a `connect reach` in
 * the benchmark stopped serving this way). A child process runs handshakes with a 1 MiB young generation, so that
 * collections come every few allocations: with the old key export it hangs within seconds; it must finish.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';

const HANDSHAKES = 5_000;

const child = `
const { E2EInitiator, generateIdentity, parseAnswer, respond } = await import(${JSON.stringify(new URL('../src/index.js', import.meta.url).href)});
const identity = generateIdentity();
for (let i = 0; i < ${HANDSHAKES}; i++) {
  const initiator = new E2EInitiator();
  const { answer, session } = respond(initiator.offer, identity, { agentId: 'a', label: 'db-server', service: 'prod-db' });
  const finished = initiator.finish(parseAnswer(answer));
  if (finished.peer.label !== 'db-server' || !session) throw new Error('handshake went wrong');
  if (i % 500 === 0) generateIdentity();
}
process.stdout.write('done');
`;

test(`${HANDSHAKES} stream handshakes with garbage collections all the time finish (no deadlock in key export)`, async () => {
  const proc = spawn(process.execPath, ['--max-semi-space-size=1', '--input-type=module', '-e', child], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  // Not a speed check: the work takes a few seconds; a process still running after two minutes is hung.
  const hung = setTimeout(() => proc.kill('SIGKILL'), 120_000);
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => proc.once('exit', (c, s) => resolve([c, s])));
  clearTimeout(hung);
  assert.equal(signal, null, `the handshake process hung (killed after 120 s with ${stdout ? 'output' : 'no output'}); stderr:\n${stderr}`);
  assert.equal(code, 0, stderr);
  assert.equal(stdout, 'done');
});
