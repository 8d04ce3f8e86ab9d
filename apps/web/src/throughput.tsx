/**
 * A small live throughput chart per service. The hub publishes byte totals (`stats` events) only when they change;
 * each new total gives a rate, and a local 2-second tick samples it, so a service that went quiet drops to zero
 * instead of holding its last rate. No request is made for it.
 */

import { useEffect, useRef, useState } from 'react';

const TICK_MS = 2_000;
/** Samples kept: one minute at one per tick. */
const SAMPLES = 30;

/** A rate older than this (no new totals since) counts as zero: the hub sends totals only when they change. */
const QUIET_MS = 2 * TICK_MS + 500;

/**
 * Bytes per second of each service over the last minute, oldest first, from `totals` (bytes in + out so far). A
 * rate is measured when new totals arrive, over the time since the previous ones, so the hub's 2-second cadence
 * and the local tick never beat against each other; until a service's second totals it has no samples (not a
 * made-up zero).
 */
export function useThroughput(totals: Map<string, number>): Map<string, number[]> {
  // Who deletes: nobody; one entry per service name seen while the page is open.
  const last = useRef(new Map<string, { total: number; at: number; rate?: number }>());
  const [history, setHistory] = useState(() => new Map<string, number[]>());
  useEffect(() => {
    const now = performance.now();
    for (const [name, total] of totals) {
      const before = last.current.get(name);
      if (before && total === before.total) continue;
      const rate = before ? (total < before.total ? 0 : ((total - before.total) * 1000) / Math.max(1, now - before.at)) : undefined;
      last.current.set(name, { total, at: now, rate });
    }
  }, [totals]);
  useEffect(() => {
    const timer = window.setInterval(() => {
      const now = performance.now();
      const rates: Array<[string, number]> = [];
      for (const [name, { at, rate }] of last.current) if (rate !== undefined || now - at > QUIET_MS) rates.push([name, now - at > QUIET_MS ? 0 : rate!]);
      setHistory((old) => new Map([...old, ...rates.map(([name, rate]) => [name, [...(old.get(name) ?? []), rate].slice(-SAMPLES)] as const)]));
    }, TICK_MS);
    return () => window.clearInterval(timer);
  }, []);
  return history;
}

export function formatRate(bytesPerSecond: number): string {
  if (bytesPerSecond < 1024) return `${Math.round(bytesPerSecond)} B/s`;
  if (bytesPerSecond < 1024 * 1024) return `${(bytesPerSecond / 1024).toFixed(1)} KiB/s`;
  return `${(bytesPerSecond / 1024 / 1024).toFixed(1)} MiB/s`;
}

/** A sparkline of `samples` (bytes/s), with the current rate as its text alternative. */
export function ThroughputChart({ name, samples }: { name: string; samples: number[] }) {
  const now = samples.at(-1) ?? 0;
  const peak = Math.max(1, ...samples);
  const points = samples.map((value, i) => `${SAMPLES - samples.length + i},${20 - (value / peak) * 18}`).join(' ');
  return (
    <figure className="throughput" data-testid="throughput" data-rate={Math.round(now)}>
      <svg className="chart" viewBox={`0 0 ${SAMPLES - 1} 20`} preserveAspectRatio="none" role="img" aria-label={`Throughput of ${name}: ${formatRate(now)} now, peak ${formatRate(Math.max(0, ...samples))} in the last minute`}>
        <line className="base" x1="0" y1="20" x2={SAMPLES - 1} y2="20" />
        {samples.length > 1 ? <polyline points={points} /> : null}
      </svg>
      <figcaption className="chart-label">{samples.length === 0 ? 'measuring…' : `${formatRate(now)} now · last minute`}</figcaption>
    </figure>
  );
}
