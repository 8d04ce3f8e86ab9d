/** Tests for issue 25's direct-path goals (src/direct-goals.ts), judged on made-up results of one peer run. */

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { directGoals, directRatioLines, DIRECT_HUB_CPU_MAX_CORES } from '../src/direct-goals.js';
import type { PeersResults, PeerWayResult } from '../src/peers-bench.js';
import type { PeerWay } from '../src/peer-ways.js';

interface Figures {
  mbps: number;
  rps: number;
  p50: number;
  tps: number;
  reconnectTps: number;
  redis: number;
  hubCpu?: number;
}

function way(name: PeerWay, f: Figures, skipped?: string): PeerWayResult {
  return {
    way: name,
    label: name,
    ...(skipped ? { skipped } : {}),
    errors: [],
    iperf: { runs: [], megabytesPerSec: f.mbps, cpuSecondsPerGB: 1, cpuByRole: f.hubCpu === undefined ? {} : { hub: f.hubCpu, 'expose agent': 0.6, 'reach agent': 0.7 } },
    http: { runs: [], requestsPerSec: f.rps, p50Us: f.p50, p99Us: f.p50 * 3 },
    pgbench: { runs: [], reconnectRuns: [], tps: f.tps, reconnectTps: f.reconnectTps },
    redis: { runs: [], pipelinedRuns: [], rps: { GET: f.redis, SET: f.redis }, pipelinedRps: { GET: f.redis * 10, SET: f.redis * 10 } },
  };
}

const SSH: Figures = { mbps: 1000, rps: 20_000, p50: 1000, tps: 10_000, reconnectTps: 200, redis: 30_000 };

function results(direct: Figures, options: { sshSkipped?: string; directSkipped?: string } = {}): PeersResults {
  return {
    e2eInBuild: true,
    rounds: 1,
    iperfSeconds: 1,
    iperfOmitSeconds: 1,
    wrk: { threads: 2, connections: 32, seconds: 1, bodyBytes: 64 },
    connConcurrency: 32,
    connSeconds: 1,
    pgbench: { seconds: 1, clients: 8, threads: 2, scale: 1 },
    redis: { clients: 32, requests: 2000, pipelinedRequests: 20_000, pipeline: 16 },
    clientsNotRun: [],
    streams: 100,
    ways: [
      way('ssh', SSH, options.sshSkipped),
      way('connect', { mbps: 440, rps: 9000, p50: 2500, tps: 4300, reconnectTps: 160, redis: 10_000, hubCpu: 0.85 }),
      way('connectDirect', direct, options.directSkipped),
    ],
  };
}

const byWhat = (p: PeersResults) => new Map(directGoals(p).checks.map((c) => [c.what, c]));

describe('direct path goals', () => {
  test('are all met when the direct path reaches 1.2x ssh -R single stream, 1.0x its rates, its p50, with the hub idle', () => {
    const checks = directGoals(results({ mbps: 1200, rps: 20_000, p50: 1000, tps: 10_000, reconnectTps: 200, redis: 30_000, hubCpu: 0.01 })).checks;
    // iperf3, wrk req/s, p50, pgbench -S and -C -S, redis GET/SET plain and -P 16, hub CPU.
    assert.equal(checks.length, 10);
    assert.deepEqual(checks.filter((c) => !c.met), []);
    assert.ok(checks.every((c) => c.way === 'connectDirect'));
  });

  test('misses the single stream goal below 1.2x ssh -R even when faster than it', () => {
    const c = byWhat(results({ mbps: 1190, rps: 20_000, p50: 1000, tps: 10_000, reconnectTps: 200, redis: 30_000, hubCpu: 0 }));
    const single = c.get('iperf3 single stream at least 1.2x ssh -R')!;
    assert.equal(single.met, false);
    assert.match(single.detail, /1,190 vs ssh -R 1,000 MB\/s \(1\.19x\)/);
  });

  test('misses p50 when above ssh -R, and a rate goal when below 1.0x, each on its own', () => {
    const c = byWhat(results({ mbps: 2000, rps: 19_999, p50: 1001, tps: 10_000, reconnectTps: 199, redis: 30_000, hubCpu: 0 }));
    assert.equal(c.get("HTTP latency p50 at most ssh -R's")!.met, false);
    assert.equal(c.get('HTTP requests/s at least 1.0x ssh -R')!.met, false);
    assert.equal(c.get('pgbench -C -S TPS at least 1.0x ssh -R')!.met, false);
    assert.equal(c.get('pgbench -S TPS at least 1.0x ssh -R')!.met, true);
    assert.equal(c.get('redis-benchmark -P 16 GET req/s at least 1.0x ssh -R')!.met, true);
  });

  test('misses the hub CPU goal above its limit, and when the hub CPU was not measured', () => {
    const what = `hub CPU during the direct iperf3 near zero (at most ${DIRECT_HUB_CPU_MAX_CORES} of a core)`;
    const busy = byWhat(results({ ...SSH, mbps: 1500, hubCpu: DIRECT_HUB_CPU_MAX_CORES + 0.01 })).get(what)!;
    assert.equal(busy.met, false);
    assert.match(busy.detail, /through the relay 0\.85/);
    assert.equal(byWhat(results({ ...SSH, mbps: 1500 })).get(what)!.met, false);
  });

  test('counts a figure the direct way never produced (it did not go direct) as missed, not met', () => {
    const checks = directGoals(results({ mbps: NaN, rps: NaN, p50: NaN, tps: NaN, reconnectTps: NaN, redis: NaN })).checks;
    assert.equal(checks.length, 10);
    assert.deepEqual(checks.filter((c) => c.met), []);
  });

  test('without ssh -R only the hub CPU is judged, and a note says why', () => {
    const { checks, notes } = directGoals(results({ ...SSH, hubCpu: 0.01 }, { sshSkipped: 'no sshd' }));
    assert.deepEqual(checks.map((c) => c.what), [`hub CPU during the direct iperf3 near zero (at most ${DIRECT_HUB_CPU_MAX_CORES} of a core)`]);
    assert.match(notes.join('\n'), /ssh -R did not run/);
  });

  test('are not judged when the direct way was skipped', () => {
    const { checks, notes } = directGoals(results(SSH, { directSkipped: 'no direct in this build' }));
    assert.deepEqual(checks, []);
    assert.match(notes[0]!, /did not run \(no direct in this build\)/);
  });
});

describe('direct path ratio lines', () => {
  test('put each figure beside ssh -R and the relay, and end with the hub CPU of both', () => {
    const lines = directRatioLines(results({ mbps: 1500, rps: 22_000, p50: 900, tps: 11_000, reconnectTps: 250, redis: 33_000, hubCpu: 0.004 }));
    assert.equal(lines[0], 'iperf3 single stream: 1,500 MB/s, 1.50x of ssh -R (1,000), 3.41x of the relay (440)');
    assert.ok(lines.includes('HTTP latency p50 (lower is better): 900 µs, 0.90x of ssh -R (1,000), 0.36x of the relay (2,500)'));
    assert.equal(lines.at(-1), 'hub CPU during iperf3 (1.00 = one core): 0.004 on the direct path, 0.85 through the relay');
  });

  test('are none when the direct way did not run', () => {
    assert.deepEqual(directRatioLines(results(SSH, { directSkipped: 'x' })), []);
  });
});
