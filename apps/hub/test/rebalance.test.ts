/**
 * The share of a cluster's agents a hub carries: how many it asks to move, given what the other hubs up carry.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { REBALANCE_MAX_MOVES, REBALANCE_SLACK, surplusAgents } from '../src/cluster/rebalance.js';

describe('surplusAgents', () => {
  test('a hub carrying everyone while another hub is up and empty moves down to its share', () => {
    assert.equal(surplusAgents(6, [0]), 3);
    assert.equal(surplusAgents(9, [0, 0]), 6);
    assert.equal(surplusAgents(10, [2, 3]), 5);
  });

  test('moves nobody when it is alone, balanced, or within the slack of its share', () => {
    assert.equal(surplusAgents(6, []), 0);
    assert.equal(surplusAgents(3, [3]), 0);
    assert.equal(surplusAgents(4, [3]), 0);
    assert.equal(surplusAgents(4 + REBALANCE_SLACK, [4 - REBALANCE_SLACK]), 0);
    assert.equal(surplusAgents(0, [10]), 0);
  });

  test('moves at most REBALANCE_MAX_MOVES per round', () => {
    assert.equal(surplusAgents(100_000, [0]), REBALANCE_MAX_MOVES);
  });
});
