/**
 * `connect daemon run`: the long-running agent that systemd or launchd keeps up. It brings back every service of
 * state.json (exposed and reached, reach ports as remembered), keeps them up through reconnects, re-reads the state
 * on SIGHUP (`connect down <name>` and `connect daemon reload` send it), and logs JSON lines to daemon.log.
 */

import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { ConnectError } from '@private-connect/protocol';
import {
  Agent,
  backoffDelay,
  choosePort,
  readState,
  removeRun,
  updateRun,
  type AgentEvent,
  type Reach,
  type RunRecord,
  type StateEntry,
} from '@private-connect/sdk';
import { requireConfig, type Context } from '../context.js';
import { color } from '../output.js';
import { agentOptions, directOfRecord, printEvent, RUN_UPDATE_MS } from '../run-agent.js';
import { parseDirectFlags, resolveDirect, type DirectFlags } from '../direct-setting.js';
import { daemonLogPath, removeDaemonPid, rotateLog, runningDaemon, writeDaemonPid } from './daemon-files.js';

/** Retries of a service the hub refused (name taken, service unknown yet, ...) back off up to this. */
export const RESTORE_RETRY_MAX_MS = 60_000;
const ROTATE_CHECK_MS = 60 * 60 * 1000;

/** One service of state.json as the daemon runs it. */
interface Restored {
  entry: StateEntry;
  /** Set by drop(): the restore loop stops and undoes what it did. */
  stopped: boolean;
  /** True once the hub accepted the expose or the reach listens. */
  up: boolean;
  reach?: Reach;
  record: RunRecord;
  /** The run record write in flight; drop() waits for it so a late write cannot bring the record back. */
  writing: Promise<void>;
}

const keyOf = (entry: StateEntry) => `${entry.kind}:${entry.name}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

export async function runDaemon(ctx: Context, flags: DirectFlags = {}): Promise<number> {
  const choice = parseDirectFlags(flags);
  const config = await requireConfig(ctx);
  const direct = resolveDirect(choice, ctx.env, config, 'daemon');
  /** The agent's direct port (direct_listening), kept in the expose records. */
  let listening: { host: string; port: number } | undefined;
  const other = await runningDaemon(ctx.home);
  if (other && other.pid !== process.pid) {
    throw new ConnectError('BAD_REQUEST', `a daemon already runs for ${ctx.home} (pid ${other.pid}); see it with: connect daemon status`);
  }
  await mkdir(ctx.home, { recursive: true, mode: 0o700 });
  await writeDaemonPid(ctx.home, { pid: process.pid, startedAt: new Date().toISOString() });
  const logFile = openLog(ctx.home);
  await logFile.rotate();
  // daemon.log has everything. Under systemd or launchd (stdout not a terminal) nothing else is printed: launchd
  // sends stdout to daemon.log too, and would double every line. In a terminal, or with --json, events show there too.
  const echo = ctx.out.json || process.stdout.isTTY === true;
  const log = (value: Record<string, unknown>, human?: string) => {
    logFile.write({ time: new Date().toISOString(), ...value });
    if (echo && (human !== undefined || ctx.out.json)) ctx.out.event(value, human);
  };

  let fail: (err: ConnectError) => void = () => undefined;
  const fatal = new Promise<ConnectError>((resolve) => (fail = resolve));
  let hubState: RunRecord['state'] = 'reconnecting';
  let hubUrl: string | undefined;
  /** The services being run, by kind:name; entries are added by start() and deleted by drop(). */
  const restored = new Map<string, Restored>();
  const agent = new Agent(
    agentOptions(ctx, config, (event: AgentEvent) => {
      logFile.write({ time: new Date().toISOString(), ...event });
      if (echo) printEvent(ctx.out, event);
      if (event.type === 'connected') [hubState, hubUrl] = ['connected', event.hubUrl];
      if (event.type === 'disconnected') hubState = 'reconnecting';
      if (event.type === 'fatal') fail(new ConnectError(event.code as ConnectError['code'], event.message));
      if (event.type === 'direct_listening') listening = { host: event.host, port: event.port };
      if (event.type === 'path') {
        const item = restored.get(`reach:${event.name}`);
        if (item) void writeRecord(item);
      }
    }, direct),
  );

  const snapshot = (item: Restored): RunRecord => ({
    ...item.record,
    state: item.up ? hubState : 'retrying',
    ...(hubUrl ? { hubUrl } : {}),
    traffic: agent.traffic(item.entry.name),
    ...directOfRecord(agent, item.record, listening, direct),
    updatedAt: new Date().toISOString(),
  });
  const writeRecord = (item: Restored) => {
    if (item.stopped) return item.writing;
    return (item.writing = item.writing.then(() => (item.stopped ? undefined : updateRun(ctx.home, snapshot(item)).then(() => undefined, () => undefined))));
  };

  const start = (entry: StateEntry) => {
    const record: RunRecord = {
      pid: process.pid,
      command: entry.kind,
      name: entry.name,
      ...(entry.kind === 'expose' ? { target: entry.target } : { port: entry.port, host: entry.host }),
      startedAt: new Date().toISOString(),
      daemon: true,
    };
    const item: Restored = { entry, stopped: false, up: false, record, writing: Promise.resolve() };
    restored.set(keyOf(entry), item);
    void writeRecord(item);
    void restore(item);
  };

  const restore = async (item: Restored) => {
    const { entry } = item;
    for (let attempt = 0; !item.stopped; attempt++) {
      try {
        if (entry.kind === 'expose') {
          await agent.expose(entry.name, entry.target, { protocol: entry.protocol ?? 'tcp', hubPort: entry.hubPort ?? false });
        } else {
          item.reach = await reachOnRememberedPort(agent, entry, (message) => log({ type: 'warning', name: entry.name, message }, undefined));
          item.record = { ...item.record, port: item.reach.port };
        }
        if (item.stopped) return await undo(item);
        item.up = true;
        log({ type: 'restored', kind: entry.kind, name: entry.name });
        return void (await writeRecord(item));
      } catch (err) {
        const error = err instanceof ConnectError ? err : new ConnectError('INTERNAL', String(err));
        const retryInMs = backoffDelay(attempt, { initialMs: 1000, maxMs: RESTORE_RETRY_MAX_MS });
        log({ type: 'restore_failed', kind: entry.kind, name: entry.name, code: error.code, message: error.message, retryInMs }, `${color.red('✗')} could not restore ${entry.kind} ${entry.name}: ${error.message}; retrying in ${(retryInMs / 1000).toFixed(1)}s`);
        await sleep(retryInMs);
      }
    }
  };

  const undo = async (item: Restored) => {
    if (item.entry.kind === 'expose' && item.up) await agent.unexpose(item.entry.name).catch(() => undefined);
    await item.reach?.close();
  };

  const drop = async (item: Restored) => {
    item.stopped = true;
    restored.delete(keyOf(item.entry));
    await undo(item);
    await item.writing;
    await removeRun(ctx.home, item.record);
    log({ type: 'dropped', kind: item.entry.kind, name: item.entry.name });
  };

  /** Makes the running services match state.json: starts new entries, drops removed ones, restarts changed ones. */
  const apply = async () => {
    const wanted = new Map((await readState(ctx.home)).services.map((e) => [keyOf(e), e]));
    for (const [key, item] of [...restored]) {
      const entry = wanted.get(key);
      if (!entry || JSON.stringify(entry) !== JSON.stringify(item.entry)) await drop(item);
    }
    for (const [key, entry] of wanted) if (!restored.has(key)) start(entry);
  };

  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  /** Reloads one after another: a SIGHUP during a reload runs one more afterwards. */
  let reloading: Promise<void> = Promise.resolve();
  const onHup = () => {
    reloading = reloading.then(() => apply()).then(
      () => log({ type: 'reloaded', services: restored.size }),
      (err: unknown) => log({ type: 'reload_failed', message: String(err) }),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.on('SIGHUP', onHup);
  const ticker = setInterval(() => restored.forEach((item) => void writeRecord(item)), RUN_UPDATE_MS);
  const rotator = setInterval(() => void logFile.rotate(), ROTATE_CHECK_MS);
  try {
    await apply();
    if (direct.off) log({ type: 'direct_off', reason: direct.off }, color.dim(`direct connections off (${direct.off})`));
    log({ type: 'daemon_started', pid: process.pid, home: ctx.home, services: restored.size }, `${color.green('✓')} daemon started (pid ${process.pid}); restoring ${restored.size} service(s) from ${ctx.home}/state.json`);
    const outcome = await Promise.race([stopped.then(() => undefined), fatal]);
    if (outcome) {
      log({ type: 'daemon_stopped', code: outcome.code, message: outcome.message });
      return 1;
    }
    log({ type: 'daemon_stopped' }, color.dim('daemon stopped'));
    return 0;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    process.off('SIGHUP', onHup);
    clearInterval(ticker);
    clearInterval(rotator);
    await reloading;
    for (const item of restored.values()) {
      item.stopped = true;
      await item.writing;
      await removeRun(ctx.home, item.record);
    }
    await agent.close();
    await removeDaemonPid(ctx.home, process.pid);
    await logFile.close();
  }
}

/** Listens on the port state.json remembers; when something else holds it, on the next free one (state keeps the wish). */
async function reachOnRememberedPort(agent: Agent, entry: Extract<StateEntry, { kind: 'reach' }>, warn: (message: string) => void): Promise<Reach> {
  try {
    return await agent.reach(entry.name, { port: entry.port, host: entry.host });
  } catch (err) {
    if (!(err instanceof ConnectError) || err.code !== 'PORT_IN_USE') throw err;
    const reach = await agent.reach(entry.name, { host: entry.host, port: (await choosePort({ preferred: entry.port, host: entry.host })).port });
    warn(`port ${entry.port} on ${entry.host} is in use; ${entry.name} listens on ${reach.port} until it is free at the next start`);
    return reach;
  }
}

/** daemon.log as an append-only stream of JSON lines, moved aside when it grows too large. */
function openLog(home: string) {
  let stream: WriteStream = createWriteStream(daemonLogPath(home), { flags: 'a', mode: 0o600 });
  stream.on('error', () => undefined);
  return {
    write: (value: Record<string, unknown>) => void stream.write(JSON.stringify(value) + '\n'),
    rotate: async () => {
      const before = stream;
      await rotateLog(home);
      // After a rename the open stream still writes to the old file: reopen by path.
      stream = createWriteStream(daemonLogPath(home), { flags: 'a', mode: 0o600 });
      stream.on('error', () => undefined);
      before.end();
    },
    close: () => new Promise<void>((resolve) => stream.end(() => resolve())),
  };
}
