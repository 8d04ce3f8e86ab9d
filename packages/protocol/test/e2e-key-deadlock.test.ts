/**
 * The end-to-end key code must not deadlock node:crypto. Node 20's KeyObject.export({ format: 'jwk' }) holds the
 * key's mutex while it allocates; a garbage collection in that window that frees the job that generated the key
 * takes the same mutex, and the process hangs for good with its main thread in futex_wait (a `connect reach` in
 * the benchmark stopped serving this way). A child process runs what an agent does with keys (new static keys and
 * identities, their PEM round trip, the static key's signature and its check, per-stream keys and records) with a
 * 1 MiB young generation, so that collections come every few allocations: with a JWK export of a freshly generated
 * key it hangs within seconds; it must finish.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';

const ROUNDS = 5_000;

const child = `
const e2e = await import(${JSON.stringify(new URL('../src/index.js', import.meta.url).href)});
const identity = e2e.generateIdentity();
const identityKey = identity.publicKey.toString('base64');
const sid = Buffer.alloc(e2e.E2E_SESSION_ID_BYTES, 7);
for (let i = 0; i < ${ROUNDS}; i++) {
  const staticKey = e2e.generateStaticKey();
  const sig = e2e.signStaticKey(identity, staticKey.publicKey);
  if (!e2e.verifyStaticKey(identityKey, staticKey.publicKey.toString('base64'), sig)) throw new Error('the static key signature did not verify');
  if (!e2e.staticKeyFromPem(staticKey.privateKeyPem).publicKey.equals(staticKey.publicKey)) throw new Error('the static key PEM did not round-trip');
  const a = e2e.deriveStreamSession(staticKey.secretKey, staticKey.publicKey, sid, i + 1, 'prod-db', { recordsPerKey: 2 });
  const b = e2e.deriveStreamSession(staticKey.publicKey, staticKey.secretKey, sid, i + 1, 'prod-db', { recordsPerKey: 2 });
  for (let r = 0; r < 3; r++) {
    const record = Buffer.alloc(4 + e2e.E2E_TAG_BYTES);
    a.sealInto([Buffer.from('ping')], record, 0);
    if (b.open(record).toString() !== 'ping') throw new Error('a record did not open');
  }
  if (i % 500 === 0) e2e.identityFromPem(e2e.generateIdentity().privateKeyPem);
}
process.stdout.write('done');
`;

test(`${ROUNDS} rounds of static keys, signatures and stream keys with garbage collections all the time finish (no deadlock in key export)`, async () => {
  const proc = spawn(process.execPath, ['--max-semi-space-size=1', '--input-type=module', '-e', child], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  // Not a speed check: the work takes a few seconds; a process still running after two minutes is hung.
  const hung = setTimeout(() => proc.kill('SIGKILL'), 120_000);
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => proc.once('exit', (c, s) => resolve([c, s])));
  clearTimeout(hung);
  assert.equal(signal, null, `the key process hung (killed after 120 s with ${stdout ? 'output' : 'no output'}); stderr:\n${stderr}`);
  assert.equal(code, 0, stderr);
  assert.equal(stdout, 'done');
});
