/** Runs an agent in the foreground for `expose` and `reach` until Ctrl-C, printing what happens. */

import { ConnectError } from '@private-connect/protocol';
import { Agent, portsPath, recordRun, type AgentEvent, type RunRecord } from '@private-connect/sdk';
import { requireConfig, type Context } from './context.js';
import { tokenExpiryWarning } from './token-warning.js';
import { color, type Output } from './output.js';

/** Starts the agent, runs `setup` (expose or reach), then waits for a signal or a fatal error. Returns the exit code. */
export async function runAgent(
  ctx: Context,
  record: Omit<RunRecord, 'pid' | 'startedAt'>,
  setup: (agent: Agent) => Promise<Partial<RunRecord>>,
): Promise<number> {
  const config = await requireConfig(ctx);
  let fail: (err: ConnectError) => void = () => undefined;
  const fatal = new Promise<ConnectError>((resolve) => (fail = resolve));
  /** printEvent already printed the fatal error; what setup rejects with afterwards is the same error. */
  let fatalPrinted = false;
  const agent = new Agent({
    hubUrl: config.hubUrl,
    token: config.token,
    label: config.label,
    portsFile: portsPath(ctx.home),
    allowInsecure: ctx.env.allowInsecure,
    backoff: { initialMs: 250, maxMs: ctx.env.reconnectMaxMs ?? 30_000 },
    onEvent: (event) => {
      printEvent(ctx.out, event);
      if (event.type === 'fatal') {
        fatalPrinted = true;
        fail(new ConnectError(event.code as ConnectError['code'], event.message));
      }
    },
  });
  let removeRecord: (() => Promise<void>) | undefined;
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const onSignal = () => stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const extra = await Promise.race([setup(agent), fatal.then((err) => Promise.reject(err))]);
    removeRecord = await recordRun(ctx.home, { ...record, ...extra, pid: process.pid, startedAt: new Date().toISOString() });
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
    await removeRecord?.();
    await agent.close();
  }
}

function printEvent(out: Output, event: AgentEvent): void {
  switch (event.type) {
    case 'connected':
      return out.event(event, `${color.green('✓')} connected to the hub as ${event.label}`);
    case 'disconnected':
      return out.event(event, `${color.yellow('…')} ${event.message}; reconnecting in ${(event.retryInMs / 1000).toFixed(1)}s`);
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
      const status = event.service.online ? '' : color.yellow(`  (${event.name} is offline right now; connections will work once it is back)`);
      return out.event(event, `${color.green('✓')} ${color.bold(event.name)} is reachable on ${event.host}:${event.port}${status}`);
    }
    case 'reach_registered':
      return out.event(event);
    case 'stream_refused':
      return out.event(event, `${color.red('✗')} connection to ${event.name} refused: ${event.message}`);
    case 'target_unreachable':
      return out.event(event, `${color.red('✗')} ${event.message}`);
    case 'service_taken_over':
      return out.event(event, `${color.yellow('!')} ${event.name} is now exposed by another connection of this agent`);
    case 'token_expiring':
      return out.json ? out.event(event) : out.warn(tokenExpiryWarning(event.expiresAt, event.expiresInMs));
  }
}
