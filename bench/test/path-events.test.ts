/** Tests for reading `connect reach --json` path events and judging them per way (src/path-events.ts). */

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pathEvents, pathProblems } from '../src/path-events.js';

const relay = { type: 'path', name: 'db', mode: 'relay', reason: 'probing 2 candidates' };
const direct = { type: 'path', name: 'db', mode: 'direct', via: '127.0.0.1:41641' };

describe('path events', () => {
  test('are the path lines of the named service only, in order, text lines and other events left out', () => {
    const lines = ['a line for people', { type: 'listening', name: 'db', port: 5000 }, relay, { ...direct, name: 'other' }, direct, { type: 'path', name: 'db', mode: 'sideways' }];
    assert.deepEqual(pathEvents(lines, 'db'), [
      { name: 'db', mode: 'relay', reason: 'probing 2 candidates' },
      { name: 'db', mode: 'direct', via: '127.0.0.1:41641' },
    ]);
  });

  test('of a relay way are a problem as soon as one went direct', () => {
    assert.deepEqual(pathProblems('db', pathEvents([relay], 'db'), false), []);
    assert.deepEqual(pathProblems('db', [], false), []);
    assert.deepEqual(pathProblems('db', pathEvents([relay, direct], 'db'), false), ['db went direct via 127.0.0.1:41641 although direct paths were off']);
  });

  test('of the direct way are a problem when it never went direct or fell back to the relay after going direct', () => {
    assert.deepEqual(pathProblems('db', pathEvents([relay, direct], 'db'), true), []);
    assert.deepEqual(pathProblems('db', [], true), ['db never went direct']);
    assert.deepEqual(pathProblems('db', pathEvents([relay], 'db'), true), ['db never went direct (last: relay: probing 2 candidates)']);
    const lost = { type: 'path', name: 'db', mode: 'relay', reason: 'no pong for 600 ms' };
    assert.deepEqual(pathProblems('db', pathEvents([relay, direct, lost, direct], 'db'), true), [
      'db fell back to the relay 1 time(s) while measured (first: relay: no pong for 600 ms)',
    ]);
  });
});
