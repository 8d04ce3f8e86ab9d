/**
 * Runs an agent in the foreground for `expose` and `reach` until Ctrl-C, printing what happens. What it exposes or
 * reaches is remembered in state.json (for `connect daemon run`); its run record carries state and traffic.
 */

import { ConnectError, type ReachPath } from '@private-connect/protocol';
import {
  Agent,
  homeAgentOptions,
  recordRun,
  rememberService,
  updateRun,
  type AgentConfig,
  type AgentEvent,
  type AgentOptions,
  type RunRecord,
  type StateEntry,
} from '@private-connect/sdk';
import { requireConfig, type Context } from './context.js';
import { tokenExpiryWarning } from './token-warning.js';
import { color, progress, type Output } from './output.js';
import { serviceStatus } from './service-status.js';
import { clean, describePath, resolveDirect, type DirectChoice, type DirectSetting } from './direct-setting.js';

/** How often a running agent rewrites its run record with its state and traffic (what `connect status` shows). */
export const RUN_UPDATE_MS = 2000;

/** The state.json entry an agent event stands for: an accepted expose, or a reach listening on its port. */
export function stateEntryOf(event: AgentEvent): StateEntry | undefined {
  if (event.type === 'exposed') {
    const { name, target, protocol, hubPort } = event.service;
    return { kind: 'expose', name, target, ...(protocol === 'http' ? { protocol } : {}), ...(hubPort ? { hubPort: true } : {}) };
  }
  if (event.type === 'listening') return { kind: 'reach', name: event.name, host: event.host, port: event.port };
  return undefined;
}

/**
 * What every agent process of this config folder runs with (the SDK's homeAgentOptions, with the CLI's environment),
 * direct paths as the flags (`direct`), CONNECT_DIRECT and config.json say.
 */
export function agentOptions(ctx: Context, config: AgentConfig, onEvent: (event: AgentEvent) => void, direct: DirectSetting = resolveDirect({}, ctx.env, config)): AgentOptions {
  return { ...homeAgentOptions(ctx.home, config, { allowInsecure: ctx.env.allowInsecure, reconnectMaxMs: ctx.env.reconnectMaxMs, onEvent }), direct: direct.direct };
}

/** What a run record says of direct paths: a reach's current path, an expose's direct port or why there is none. */
export function directOfRecord(agent: Pick<Agent, 'paths'>, record: Pick<RunRecord, 'command' | 'name'>, listening: { host: string; port: number } | undefined, setting: DirectSetting): Pick<RunRecord, 'path' | 'direct'> {
  if (record.command === 'reach') {
    if (setting.off) return { path: offPath(record.name, setting.off) };
    const path = agent.paths().find((p) => p.name === record.name);
    return path ? { path } : {};
  }
  if (setting.off) return { direct: { off: setting.off } };
  return listening ? { direct: listening } : {};
}

/** A reach's path when this agent takes no direct paths, saying which setting turned them off. */
function offPath(name: string, off: string): ReachPath {
  return { name, mode: 'relay', reason: `direct paths are off on this agent (${off})` };
}

/**
 * With direct paths off the SDK sends no path event: `connect expose` says once that it takes no direct connections,
 * `connect reach` that its streams go through the hub, each with the setting that turned them off.
 */
export function printDirectOff(out: Output, setting: DirectSetting, record: Pick<RunRecord, 'command' | 'name'>): void {
  if (!setting.off) return;
  if (record.command === 'reach') return printEvent(out, { type: 'path', ...offPath(record.name, setting.off) });
  out.event({ type: 'direct_off', reason: setting.off }, color.dim(`direct connections off (${setting.off})`));
}

/** Starts the agent, runs `setup` (expose or reach), then waits for a signal or a fatal error. Returns the exit code. */
export async function runAgent(
  ctx: Context,
  record: Omit<RunRecord, 'pid' | 'startedAt'>,
  setup: (agent: Agent) => Promise<Partial<RunRecord>>,
  tuning: Pick<AgentOptions, 'allowPlaintext'> & { direct?: DirectChoice } = {},
): Promise<number> {
  const config = await requireConfig(ctx);
  const { direct: choice, ...agentTuning } = tuning;
  const setting = resolveDirect(choice ?? {}, ctx.env, config, record.command);
  /** The exposing agent's direct port (direct_listening), printed once and kept in the run record. */
  let listening: { host: string; port: number } | undefined;
  /** Rewrites the run record now (a reach's path changed); set once the record exists. */
  let refresh: () => void = () => undefined;
  let fail: (err: ConnectError) => void = () => undefined;
  const fatal = new Promise<ConnectError>((resolve) => (fail = resolve));
  /** printEvent already printed the fatal error; what setup rejects with afterwards is the same error. */
  let fatalPrinted = false;
  let hubState: RunRecord['state'] = 'reconnecting';
  let hubUrl: string | undefined;
  const spin = progress(ctx.out, `connecting to ${config.hubUrl}`);
  const agent = new Agent({
    ...agentOptions(ctx, config, (event) => {
      if (event.type === 'direct_listening') {
        const seen = listening?.port === event.port && listening.host === event.host;
        listening = { host: event.host, port: event.port };
        if (seen) return;
      }
      printEvent(ctx.out, event);
      if (event.type === 'path') refresh();
      if (event.type === 'connected') [hubState, hubUrl] = ['connected', event.hubUrl];
      if (event.type === 'disconnected') hubState = 'reconnecting';
      const entry = stateEntryOf(event);
      if (entry) rememberService(ctx.home, entry).catch((err: unknown) => ctx.out.warn(`could not write ${ctx.home}/state.json: ${(err as Error).message}`));
      if (event.type === 'fatal') {
        fatalPrinted = true;
        fail(new ConnectError(event.code as ConnectError['code'], event.message));
      }
    }, setting),
    ...agentTuning,
  });
  let removeRecord: (() => Promise<void>) | undefined;
  let ticker: NodeJS.Timeout | undefined;
  /** The record write in flight, awaited before the record is removed (else a late write would bring it back). */
  let writing: Promise<unknown> = Promise.resolve();
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const onSignal = () => stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const extra = await Promise.race([setup(agent), fatal.then((err) => Promise.reject(err))]).finally(() => spin.stop());
    printDirectOff(ctx.out, setting, record);
    const base: RunRecord = { ...record, ...extra, pid: process.pid, startedAt: new Date().toISOString() };
    const snapshot = (): RunRecord => ({
      ...base,
      state: hubState,
      ...(hubUrl ? { hubUrl } : {}),
      traffic: agent.traffic(record.name),
      ...directOfRecord(agent, record, listening, setting),
      updatedAt: new Date().toISOString(),
    });
    removeRecord = await recordRun(ctx.home, snapshot());
    // One write after another: a path change and the ticker never race to rename the same temp file.
    const update = () => void (writing = writing.then(() => updateRun(ctx.home, snapshot())).catch(() => undefined));
    refresh = update;
    ticker = setInterval(update, RUN_UPDATE_MS);
    ticker.unref();
    const outcome = await Promise.race([stopped.then(() => undefined), fatal]);
    if (outcome) return 1; // already printed by printEvent
    ctx.out.event({ type: 'stopped' }, color.dim('stopped'));
    return 0;
  } catch (err) {
    if (!fatalPrinted) ctx.out.error(err);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    refresh = () => undefined;
    spin.stop();
    clearInterval(ticker);
    await writing;
    await removeRecord?.();
    await agent.close();
  }
}

/** Prints one agent event for people (or as a JSON line with --json). */
export function printEvent(out: Output, event: AgentEvent): void {
  switch (event.type) {
    case 'connected':
      return out.event(event, `${color.green('✓')} connected to the hub as ${event.label}`);
    case 'disconnected':
      return out.event(event, `${color.yellow('…')} ${event.message}; reconnecting in ${(event.retryInMs / 1000).toFixed(1)}s`);
    case 'goaway':
      return out.event(event, `${color.yellow('…')} ${event.message}${event.openStreams > 0 ? `; ${event.openStreams} open connection(s) finish first` : ''}`);
    case 'fatal':
      return out.error(new ConnectError(event.code as ConnectError['code'], event.message));
    case 'exposed':
      return out.event(
        event,
        `${color.green('✓')} exposing ${color.bold(event.service.name)} → ${event.service.target}   reach it with: connect reach ${event.service.name}` +
          (event.service.hubPort ? `\n  also on the hub's TCP port ${color.bold(String(event.service.hubPort))} (for clients without an agent)` : ''),
      );
    case 'expose_failed':
      return out.event(event, `${color.red('✗')} could not expose ${event.name} again: ${event.message}`);
    case 'listening': {
      if (event.wanted !== undefined) out.warn(`port ${event.wanted} is in use; ${event.name} listens on ${event.port} instead`);
      const { status, reason } = serviceStatus(event.service);
      if (status === 'failing') {
        // The hub has the exposing agent's latest check: a client would connect and be dropped; say so, with the check.
        return out.event(
          event,
          `${color.yellow('!')} ${color.bold(event.name)} listens on ${event.host}:${event.port}, but its target fails its checks: ${reason}` +
            color.dim(`\n  connections will fail until the target answers (connect reach ${event.name} --check tests it end to end)`),
        );
      }
      const note = status === 'offline' ? color.yellow(`  (${event.name} is offline right now; connections will work once it is back)`) : '';
      return out.event(event, `${color.green('✓')} ${color.bold(event.name)} is reachable on ${event.host}:${event.port}${note}`);
    }
    case 'reach_registered':
      return out.event(event);
    case 'stream_refused':
      if (event.code === 'E2E_KEY_CHANGED') return out.event(event, `${color.red('✗')} ${color.red(color.bold(event.message))}`);
      return out.event(event, `${color.red('✗')} connection to ${event.name} refused: ${event.message}`);
    case 'open_rejected': {
      // An agent restarted since the session was made: the opener makes a new one at once, nothing to tell a person.
      if (event.code === 'E2E_SESSION_UNKNOWN') return out.json ? out.event(event) : undefined;
      const message = event.message.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
      return out.event(event, `${color.red('✗')} refused a connection to ${event.name} from ${event.from}: ${event.code}: ${message}`);
    }
    case 'stream_reset': {
      // The message may come from the other end through the hub: no control characters on the terminal.
      const message = event.message.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
      const who = event.by === 'local' ? 'found here' : 'reset by the other end';
      return out.event(event, `${color.red('✗')} stream ${event.stream} of ${event.name} reset (${who}): ${event.code}: ${message}`);
    }
    case 'path':
      return out.event(event, event.mode === 'direct' ? `${color.green('✓')} ${describePath(event)}` : `${color.dim('·')} ${describePath(event)}`);
    case 'direct_listening':
      return out.event(event, `${color.green('✓')} direct connections on port ${color.bold(String(event.port))}`);
    case 'direct_refused':
      // Whoever connected to the direct port learnt nothing; the exposing side says who and why.
      return out.event(event, `${color.yellow('!')} refused a direct connection from ${clean(event.remote)}: ${clean(event.reason)}`);
    case 'agent_pinned':
      return out.event(event, `${color.green('✓')} ${event.name}: end-to-end encrypted to agent ${color.bold(event.label)}, key ${event.fingerprint} (pinned on first use in known_agents.json)`);
    case 'target_unreachable':
      return out.event(event, `${color.red('✗')} ${event.message}`);
    case 'service_taken_over':
      return out.event(event, `${color.yellow('!')} ${event.name} is now exposed by another connection of this agent`);
    case 'token_rotated':
      if (!event.saved) return out.warn(`the agent token was rotated by the hub but could not be saved (${event.message ?? 'no store'}); the previous one works for 24 hours after a restart`);
      return out.event(event, `${color.green('✓')} the agent token was rotated by a workspace admin; the new one is saved (expires ${event.expiresAt.slice(0, 10)})`);
    case 'token_expiring':
      return out.json ? out.event(event) : out.warn(tokenExpiryWarning(event.expiresAt, event.expiresInMs));
    case 'health': {
      // Printed for the first check and whenever the target turns good or bad (every result goes to the hub).
      const failed = event.checks.filter((c) => !c.ok);
      const human = failed.length === 0
        ? `${color.green('✓')} ${event.name}: the target passes its health checks`
        : `${color.red('✗')} ${event.name}: ${failed.map((c) => `${c.name.toUpperCase()} ${c.detail}`).join('; ')}${failed[0]!.hint ? color.dim(` (${failed[0]!.hint})`) : ''}`;
      return out.event(event, human);
    }
  }
}
