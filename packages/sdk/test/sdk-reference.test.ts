/** docs/sdk-reference.md is what scripts/sdk-reference.mjs generates from the SDK's declarations now. */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

test('docs/sdk-reference.md is the reference the SDK generates (npm run docs:sdk rewrites it)', () => {
  const script = fileURLToPath(new URL('../../../../scripts/sdk-reference.mjs', import.meta.url));
  const run = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
});
