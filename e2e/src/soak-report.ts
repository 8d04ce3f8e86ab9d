/** What a soak run measured, the checks a run must pass (shared by the CI test and the long run), and a summary. */

const MiB = 1024 * 1024;

export interface RssSample {
  /** Milliseconds since traffic started. */
  t: number;
  rss: number;
  streams: number;
}

export interface SoakReport {
  seed: number;
  seconds: number;
  /** Setup, traffic and the checks at the end. */
  wallMs: number;
  transfers: {
    /** Echoed back in full, clean end, SHA-256 equal to what was sent. */
    completed: number;
    /** Destroyed on purpose mid-transfer (or right after connecting). */
    aborted: number;
    /** Cut short while an agent was down or coming back (allowed). */
    interrupted: number;
    /** Cut short with no agent kill or restart anywhere near: a failure. */
    unexplained: number;
    /** No close within the transfer timeout: a failure. */
    stalled: number;
    /** A wrong or extra byte, or a SHA-256 mismatch: a failure. */
    corrupt: number;
  };
  /** Bytes sent (and echoed back) by completed transfers. */
  bytesCompleted: number;
  bursts: number;
  kills: number;
  restarts: number;
  /** Each kill: which agent, when (seconds since traffic started), and when it had restored everything. */
  killLog: Array<{ agent: string; killedAt: number; backAt?: number }>;
  /** Why interrupted transfers ended, with counts. */
  interruptedReasons: Record<string, number>;
  /** One line per failed transfer or failed step (capped). */
  failures: string[];
  end: {
    agentsConnected: number;
    /** The hub's connect_streams_open once traffic stopped and agents were back (after the bounded wait). */
    hubStreams: number;
    /** Open local connections per agent (`connect status --json`, traffic.open of its services). */
    agentOpen: Record<string, number>;
    /** Every agent reached every other one after the soak (one checked transfer each). */
    finalPassOk: boolean;
  };
  rss: { start: number; warm: number; end: number; max: number; slopeMiBPerMin: number };
  streamsMax: number;
  samples: RssSample[];
  /** Folders left in place with SOAK_KEEP=1 (hub data with hub.log; agent homes with daemon.log). */
  keptDirs: string[];
}

export interface SoakLimits {
  minCompleted: number;
  minKills: number;
  /** End RSS may exceed the RSS after warm-up by at most this many bytes. */
  rssGrowthBytes: number;
}

export const DEFAULT_LIMITS: SoakLimits = { minCompleted: 100, minKills: 3, rssGrowthBytes: 64 * MiB };

/** Every way the run failed, one sentence each; empty when it passed. */
export function soakProblems(report: SoakReport, limits: SoakLimits = DEFAULT_LIMITS): string[] {
  const { transfers: t, end, rss } = report;
  const problems: string[] = [];
  if (t.corrupt > 0) problems.push(`${t.corrupt} transfer(s) got wrong bytes back`);
  if (t.stalled > 0) problems.push(`${t.stalled} transfer(s) hung until the transfer timeout`);
  if (t.unexplained > 0) problems.push(`${t.unexplained} transfer(s) failed while no agent was being killed or restarted`);
  if (t.completed < limits.minCompleted) problems.push(`only ${t.completed} completed transfers (at least ${limits.minCompleted} expected)`);
  if (report.restarts < limits.minKills) problems.push(`only ${report.kills} kills and ${report.restarts} restarts (at least ${limits.minKills} expected)`);
  if (end.agentsConnected !== Object.keys(end.agentOpen).length) problems.push(`${end.agentsConnected} agents connected at the end`);
  if (!end.finalPassOk) problems.push('the mesh did not carry a transfer on every path after the soak');
  if (end.hubStreams !== 0) problems.push(`the hub still counts ${end.hubStreams} open stream(s) after traffic stopped`);
  for (const [name, open] of Object.entries(end.agentOpen)) {
    if (open !== 0) problems.push(`agent ${name} still has ${open} open local connection(s) after traffic stopped`);
  }
  if (rss.end > rss.warm + limits.rssGrowthBytes) {
    problems.push(`hub RSS grew from ${mib(rss.warm)} after warm-up to ${mib(rss.end)} at the end (allowed: +${mib(limits.rssGrowthBytes)})`);
  }
  return problems.concat(report.failures.map((f) => `  ${f}`));
}

/** Least-squares slope of RSS over the samples from `fromMs` on, in MiB per minute. */
export function rssSlope(samples: RssSample[], fromMs: number): number {
  const points = samples.filter((s) => s.t >= fromMs);
  if (points.length < 2) return 0;
  const n = points.length;
  const meanT = points.reduce((a, p) => a + p.t, 0) / n;
  const meanR = points.reduce((a, p) => a + p.rss, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - meanT) * (p.rss - meanR);
    den += (p.t - meanT) ** 2;
  }
  return den === 0 ? 0 : (num / den / MiB) * 60_000;
}

export function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

/** The summary for people. */
export function formatSoakReport(report: SoakReport): string {
  const { transfers: t, end, rss } = report;
  const reasons = Object.entries(report.interruptedReasons)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `${reason} ×${n}`)
    .join(', ');
  return [
    `soak: ${report.seconds} s of traffic, seed ${report.seed} (replay with SOAK_SEED=${report.seed}), wall ${(report.wallMs / 1000).toFixed(1)} s`,
    `transfers: ${t.completed} completed (${mib(report.bytesCompleted)} echoed, SHA-256 checked), ${t.aborted} aborted on purpose, ${t.interrupted} interrupted by kills, ${report.bursts} bursts`,
    `failures: ${t.corrupt} corrupt, ${t.stalled} stalled, ${t.unexplained} unexplained`,
    `interrupted because: ${reasons || 'none'}`,
    `agents: ${report.kills} SIGKILLs, ${report.restarts} restarts; ${end.agentsConnected} connected at the end; final pass on every path ${end.finalPassOk ? 'ok' : 'FAILED'}`,
    `kills: ${report.killLog.map((k) => `${k.agent} at +${k.killedAt.toFixed(1)} s (back at ${k.backAt === undefined ? 'never' : `+${k.backAt.toFixed(1)} s`})`).join(', ') || 'none'}`,
    `streams: hub peak ${report.streamsMax}, hub at end ${end.hubStreams}; agents' open local connections at end ${JSON.stringify(end.agentOpen)}`,
    `hub RSS: start ${mib(rss.start)}, after warm-up ${mib(rss.warm)}, peak ${mib(rss.max)}, end ${mib(rss.end)}; slope after warm-up ${rss.slopeMiBPerMin.toFixed(2)} MiB/min`,
    ...(report.keptDirs.length > 0 ? [`logs kept in: ${report.keptDirs.join(' ')}`] : []),
  ].join('\n');
}
