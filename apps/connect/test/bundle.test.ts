/**
 * What the single-file CLI (dist/connect.mjs, what `npm install -g ./apps/connect` runs) carries: every library in it
 * is loaded by every agent, so one that only the hub or the dashboard needs costs each idle agent memory. TypeBox
 * (the REST contract's schemas) once came in through the SDK's import of @private-connect/api's index: +160 kB of
 * bundle and +9 MiB of an idle agent's RSS (bench, memory part).
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const BUNDLE = readFileSync(new URL('../connect.mjs', import.meta.url), 'utf8');

/** The third-party packages rolldown put in the bundle, from the `// ../../node_modules/<pkg>/<file>` line heading each module. */
function bundledPackages(): Set<string> {
  const found = new Set<string>();
  for (const m of BUNDLE.matchAll(/^\/\/ (?:\.\.\/)*node_modules\/((?:@[^/]+\/)?[^/]+)\//gm)) found.add(m[1]!);
  return found;
}

test('the CLI bundle holds only the libraries an agent uses', () => {
  const packages = bundledPackages();
  assert.ok(packages.has('ws') && packages.has('commander'), `the module headings were read: ${[...packages].join(', ')}`);
  // noise-handshake (with b4a and nanoassert) makes end-to-end sessions; its libsodium calls go to node:crypto
  // through packages/noise-crypto, so no libsodium port (WebAssembly: +10 MiB per agent) is in the bundle.
  assert.deepEqual([...packages].sort(), ['b4a', 'commander', 'fastest-levenshtein', 'nanoassert', 'nanospinner', 'noise-handshake', 'picocolors', 'ws']);
  assert.doesNotMatch(BUNDLE, /sodium-javascript|sodium-native|blake2b-wasm/);
});

test('no TypeBox in the CLI: the SDK takes only types and routeRequest (route-path) from the API contract', () => {
  assert.doesNotMatch(BUNDLE, /@sinclair\/typebox/);
});
