/** printEvent: how an agent's events read for people and as --json lines. */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentEvent } from '@private-connect/sdk';
import { printEvent } from '../src/run-agent.js';
import type { Output } from '../src/output.js';

/** An Output that keeps what would be printed: the event objects and the lines for people. */
function recording(json: boolean): Output & { events: Array<Record<string, unknown>>; lines: string[] } {
  const events: Array<Record<string, unknown>> = [];
  const lines: string[] = [];
  return {
    json,
    events,
    lines,
    info: (line) => void lines.push(line),
    event: (value, human) => void (json ? events.push(value) : human !== undefined && lines.push(human)),
    result: (_value, human) => void lines.push(human),
    warn: (line) => void lines.push(`warning: ${line}`),
    error: (err) => void lines.push(`error: ${String(err)}`),
  };
}

const failed: AgentEvent = {
  type: 'stream_reset',
  name: 'prod-db',
  stream: 17,
  code: 'E2E_DECRYPT_FAILED',
  message: 'encrypted record 3 of this stream does not authenticate: it was altered, replayed or reordered on the way',
  by: 'local',
};

test('a stream reset after it opened is one line naming the service, the stream and the code', () => {
  const out = recording(false);
  printEvent(out, failed);
  assert.equal(out.lines.length, 1);
  assert.match(out.lines[0]!, /prod-db/);
  assert.match(out.lines[0]!, /17/);
  assert.match(out.lines[0]!, /E2E_DECRYPT_FAILED/);
  assert.match(out.lines[0]!, /does not authenticate/);

  const remote = recording(false);
  printEvent(remote, { ...failed, by: 'remote', code: 'E2E_TRUNCATED' });
  assert.match(remote.lines[0]!, /E2E_TRUNCATED/);
  assert.match(remote.lines[0]!, /other end/);
});

test('with --json the reset is an event line with its fields', () => {
  const out = recording(true);
  printEvent(out, failed);
  assert.deepEqual(out.events, [failed]);
});

test('control characters in a message that came through the hub are not printed to a terminal', () => {
  const out = recording(false);
  printEvent(out, { ...failed, by: 'remote', message: 'bad\u001b[2J\u0007 record\nforged line' });
  assert.equal(out.lines.length, 1);
  assert.doesNotMatch(out.lines[0]!, /[\u0000-\u0008\u000b-\u001f\u007f]/);
  assert.doesNotMatch(out.lines[0]!, /\n/);
});
