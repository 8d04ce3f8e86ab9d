/** The `health` control op's arguments: what an exposing agent may report, and every limit of it. */

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectError, MAX_HEALTH_CHECKS, MAX_HEALTH_TEXT, parseHealthReport } from '../src/index.js';

const good = { name: 'tcp', ok: true, detail: '127.0.0.1:5432 accepts connections', ms: 1.234 };

function refused(args: Record<string, unknown>, message: RegExp): void {
  assert.throws(() => parseHealthReport(args), (err: unknown) => err instanceof ConnectError && err.code === 'BAD_REQUEST' && message.test(err.message));
}

describe('parseHealthReport', () => {
  test('accepts a report and recomputes ok from its checks', () => {
    const report = parseHealthReport({ service: 'db', ok: true, checks: [good, { name: 'http', ok: false, detail: 'HEAD / → 500', hint: 'look at its logs' }] });
    assert.equal(report.ok, false);
    assert.deepEqual(report.checks[0], { name: 'tcp', ok: true, detail: good.detail, ms: 1.2 });
    assert.equal(report.checks[1]!.hint, 'look at its logs');
  });

  test('drops fields it does not know', () => {
    const report = parseHealthReport({ service: 'db', ok: true, checks: [{ ...good, extra: 'x'.repeat(10_000) }], more: 1 });
    assert.deepEqual(Object.keys(report.checks[0]!).sort(), ['detail', 'ms', 'name', 'ok']);
  });

  test('refuses a report without a service, or with no checks, or too many', () => {
    refused({ checks: [good] }, /service must be a non-empty string/);
    refused({ service: 'db' }, /checks must be an array/);
    refused({ service: 'db', checks: [] }, /checks must be an array/);
    refused({ service: 'db', checks: Array.from({ length: MAX_HEALTH_CHECKS + 1 }, () => good) }, /checks must be an array of 1 to 16/);
    assert.equal(parseHealthReport({ service: 'db', checks: Array.from({ length: MAX_HEALTH_CHECKS }, () => good) }).checks.length, MAX_HEALTH_CHECKS);
  });

  test('refuses malformed checks, naming the field', () => {
    refused({ service: 'db', checks: ['tcp'] }, /checks\[0\] must be an object/);
    refused({ service: 'db', checks: [{ ...good, name: 'TCP!' }] }, /checks\[0\]\.name/);
    refused({ service: 'db', checks: [{ ...good, ok: 'yes' }] }, /checks\[0\]\.ok must be true or false/);
    refused({ service: 'db', checks: [good, { ...good, detail: 42 }] }, /checks\[1\]\.detail must be a string/);
    refused({ service: 'db', checks: [{ ...good, hint: null }] }, /checks\[0\]\.hint must be a string/);
    for (const ms of [-1, Number.NaN, '5', 1e12]) refused({ service: 'db', checks: [{ ...good, ms }] }, /checks\[0\]\.ms/);
  });

  test(`refuses a detail or hint longer than ${MAX_HEALTH_TEXT} characters`, () => {
    assert.equal(parseHealthReport({ service: 'db', checks: [{ ...good, detail: 'x'.repeat(MAX_HEALTH_TEXT) }] }).checks[0]!.detail.length, MAX_HEALTH_TEXT);
    refused({ service: 'db', checks: [{ ...good, detail: 'x'.repeat(MAX_HEALTH_TEXT + 1) }] }, /detail is longer than 512/);
    refused({ service: 'db', checks: [{ ...good, hint: 'x'.repeat(MAX_HEALTH_TEXT + 1) }] }, /hint is longer than 512/);
  });
});
