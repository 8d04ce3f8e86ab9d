/**
 * The HTTP part as text: one table (a row per way: requests/s, p50, p99, and ratios vs direct, vs the hub TCP port
 * and vs ssh -R) for the terminal and for docs/BENCHMARKS.md, the verdict on issue 21's targets for public links,
 * and the problems that make the bench exit non-zero (missing figures, failed requests; never a missed target).
 */

import { MiB } from './config.js';
import { runHeading } from './docs-block.js';
import { HTTP_WAY_LABELS, HTTP_WAYS, LINK_DOMAIN, type HttpResults, type HttpWay, type HttpWayResult } from './http-bench.js';
import { fixed, int, markdownTable, markdownText, ratio, table } from './report.js';

/** Issue 21: a public link answers at least this share of the hub TCP port's requests/s for the same service... */
export const LINK_VS_HUB_PORT_RPS = 0.9;
/** ...with a p99 at most this multiple of the hub TCP port's... */
export const LINK_VS_HUB_PORT_P99 = 2;
/** ...and at least this multiple of `ssh -R`'s requests/s on the same wrk workload. */
export const LINK_VS_SSH_RPS = 1;

const LINK_WAYS: readonly HttpWay[] = ['linkPath', 'linkSubdomain'];

function rows(h: HttpResults): { header: string[]; body: string[][] } {
  const { direct, hubPort, ssh } = h.ways;
  // No ratio of a way to itself, and none of direct (the ceiling) to the relays.
  const vs = (way: HttpWay, base: HttpWay, value: number, of: number) => (way === base || way === 'direct' ? '—' : ratio(value, of));
  const body = HTTP_WAYS.map((way) => {
    const w = h.ways[way];
    if (w.skipped) return [HTTP_WAY_LABELS[way], 'skipped', '', '', '', '', '', '', ''];
    return [
      HTTP_WAY_LABELS[way],
      int(w.requestsPerSec),
      way === 'direct' ? '—' : ratio(w.requestsPerSec, direct.requestsPerSec),
      vs(way, 'hubPort', w.requestsPerSec, hubPort.requestsPerSec),
      ssh.skipped ? '—' : vs(way, 'ssh', w.requestsPerSec, ssh.requestsPerSec),
      int(w.p50Us),
      int(w.p99Us),
      vs(way, 'hubPort', w.p99Us, hubPort.p99Us),
      w.hubCpuUs === undefined ? '—' : fixed(w.hubCpuUs),
    ];
  });
  const header = [
    `HTTP, wrk -t${h.threads} -c${h.connections} -d${h.seconds}s, ${h.bodyBytes}-byte body, median of ${h.rounds}`,
    'requests/s',
    'vs direct',
    'vs hub port',
    'vs ssh -R',
    'p50 (µs)',
    'p99 (µs)',
    'p99 vs hub port',
    'hub CPU µs/request',
  ];
  return { header, body };
}

export function httpTable(h: HttpResults): string {
  const { header, body } = rows(h);
  return table(header, body);
}

export interface HttpTargetCheck {
  way: HttpWay;
  what: string;
  met: boolean;
  detail: string;
}

/** Issue 21's targets, judged for each link mode: requests/s and p99 against the hub TCP port, requests/s against ssh -R. */
export function httpTargets(h: HttpResults): { checks: HttpTargetCheck[]; notes: string[] } {
  const { hubPort, ssh } = h.ways;
  const checks: HttpTargetCheck[] = [];
  const notes: string[] = [];
  if (ssh.skipped) notes.push(`ssh -R did not run (${ssh.skipped}), so "at least ${LINK_VS_SSH_RPS.toFixed(1)}x ssh -R" is not judged`);
  for (const way of LINK_WAYS) {
    const w = h.ways[way];
    checks.push({
      way,
      what: `requests/s ≥ ${LINK_VS_HUB_PORT_RPS}x hub TCP port`,
      met: w.requestsPerSec >= LINK_VS_HUB_PORT_RPS * hubPort.requestsPerSec,
      detail: `${int(w.requestsPerSec)} vs ${int(hubPort.requestsPerSec)} req/s (${ratio(w.requestsPerSec, hubPort.requestsPerSec)})`,
    });
    checks.push({
      way,
      what: `p99 ≤ ${LINK_VS_HUB_PORT_P99}x hub TCP port`,
      met: w.p99Us <= LINK_VS_HUB_PORT_P99 * hubPort.p99Us,
      detail: `${int(w.p99Us)} vs ${int(hubPort.p99Us)} µs (${ratio(w.p99Us, hubPort.p99Us)}; lower is better)`,
    });
    if (!ssh.skipped) {
      checks.push({
        way,
        what: `requests/s ≥ ${LINK_VS_SSH_RPS.toFixed(1)}x ssh -R`,
        met: w.requestsPerSec >= LINK_VS_SSH_RPS * ssh.requestsPerSec,
        detail: `${int(w.requestsPerSec)} vs ${int(ssh.requestsPerSec)} req/s (${ratio(w.requestsPerSec, ssh.requestsPerSec)})`,
      });
    }
  }
  return { checks, notes };
}

export function httpTargetLines(h: HttpResults): string[] {
  const { checks, notes } = httpTargets(h);
  return [
    ...checks.map((c) => `${c.met ? 'target met   ' : 'TARGET MISSED'}  ${HTTP_WAY_LABELS[c.way]}: ${c.what}: ${c.detail}`),
    ...notes.map((n) => `note: ${n}`),
  ];
}

/** What makes the bench fail: a way without a figure, errors, failed requests; ssh -R missing only outside quick mode. */
export function httpProblems(h: HttpResults, quick: boolean): string[] {
  const problems: string[] = [];
  for (const way of HTTP_WAYS) {
    const w = h.ways[way];
    const label = HTTP_WAY_LABELS[way];
    if (w.skipped) {
      if (!(quick && way === 'ssh')) problems.push(`http: ${label} could not run: ${w.skipped}`);
      continue;
    }
    for (const e of w.errors) problems.push(`http: ${label}: ${e}`);
    if (!(w.requestsPerSec > 0)) problems.push(`http: no HTTP figure for ${label}`);
    const total = w.runs.reduce((a, r) => a + r.requests, 0);
    const errors = w.runs.reduce((a, r) => a + r.errors, 0);
    if (errors > Math.max(1, total * 0.01)) problems.push(`http: ${errors} failed HTTP requests through ${label}`);
  }
  return problems;
}

const runsOf = (w: HttpWayResult): string => w.runs.map((r) => `${int(r.requestsPerSec)} (${fixed(r.p99Us / 1000)})`).join(', ');

/** How the ways were driven, skipped ways, errors and every run's requests/s: under the terminal table and in the docs. */
function facts(h: HttpResults): string[] {
  const errors = HTTP_WAYS.filter((w) => !h.ways[w].skipped).map((w) => `${w} ${h.ways[w].runs.reduce((a, r) => a + r.errors, 0)}`);
  return [
    `ways take turns in ${h.rounds} round(s), order rotated per round, after a 1-second warm-up each; medians of the healthy runs; ` +
      `errors (socket + non-2xx): ${errors.join(', ')}; hub RSS ${fixed(h.hubRss.before / MiB)} -> ${fixed(h.hubRss.after / MiB)} MiB across the runs`,
    `path mode: GET http://127.0.0.1:<hub port>/l/<token>/; subdomain mode: GET http://127.0.0.1:<hub port>/ with Host: <token>.${LINK_DOMAIN} ` +
      `(hub started with PUBLIC_BASE_DOMAIN=${LINK_DOMAIN}); ssh -R: a private sshd and \`ssh -N -R\` to the same server`,
    `requests/s (p99 in ms) of each run, in round order: ${HTTP_WAYS.filter((w) => !h.ways[w].skipped).map((w) => `${w} ${runsOf(h.ways[w])}`).join('; ')}`,
    ...HTTP_WAYS.filter((w) => h.ways[w].skipped).map((w) => `${HTTP_WAY_LABELS[w]} SKIPPED: ${h.ways[w].skipped}`),
    ...HTTP_WAYS.flatMap((w) => h.ways[w].errors.map((e) => `${HTTP_WAY_LABELS[w]}: ${e}`)),
  ];
}

/** Lines under the terminal table: the facts, then the targets. */
export function httpNotes(h: HttpResults): string[] {
  return [...facts(h).map((f) => `  http: ${f}`), ...httpTargetLines(h).map((l) => `  ${l}`)];
}

/** The figures and ratios of each way, and the targets, for artifacts/bench-latest.json. */
export function httpSummary(h: HttpResults): Record<string, unknown> {
  const share = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : null);
  const { direct, hubPort, ssh } = h.ways;
  const { checks, notes } = httpTargets(h);
  return {
    ways: Object.fromEntries(
      HTTP_WAYS.map((way) => {
        const w = h.ways[way];
        if (w.skipped) return [way, { label: HTTP_WAY_LABELS[way], skipped: w.skipped }];
        return [
          way,
          {
            label: HTTP_WAY_LABELS[way],
            requestsPerSec: w.requestsPerSec,
            p50Us: w.p50Us,
            p99Us: w.p99Us,
            hubCpuUs: w.hubCpuUs ?? null,
            ratio: share(w.requestsPerSec, direct.requestsPerSec),
            vsHubPort: { requestsPerSec: share(w.requestsPerSec, hubPort.requestsPerSec), p99: share(w.p99Us, hubPort.p99Us) },
            vsSsh: ssh.skipped ? null : { requestsPerSec: share(w.requestsPerSec, ssh.requestsPerSec), p99: share(w.p99Us, ssh.p99Us) },
            errors: w.errors,
          },
        ];
      }),
    ),
    targets: checks,
    targetNotes: notes,
  };
}

/** The generated part of docs/BENCHMARKS.md between the `bench:http` markers. */
export function httpDocsBlock(h: HttpResults, quick: boolean, started: Date, machine: string, code: string | undefined): string {
  const { header, body } = rows(h);
  const { checks, notes } = httpTargets(h);
  const missed = checks.filter((c) => !c.met);
  return [
    runHeading(started, quick, 4),
    '',
    `Machine: ${machine}.`,
    '',
    `Code: ${code ?? 'unknown (not a git work tree)'}.`,
    '',
    markdownTable(header, body),
    '',
    missed.length === 0 && checks.length > 0 ? '**Targets: all met in this run.**' : `**Targets: ${missed.length} of ${checks.length} missed in this run.**`,
    '',
    ...checks.map((c) => `- ${c.met ? 'met' : '**MISSED**'}: ${markdownText(`${HTTP_WAY_LABELS[c.way]}, ${c.what}: ${c.detail}`)}`),
    ...[...notes, ...facts(h)].map((n) => `- ${markdownText(n)}`),
  ].join('\n');
}
