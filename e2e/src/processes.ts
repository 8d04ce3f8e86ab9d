/** Child processes for multi-process tests: JSON-line output, waiting for a line, clean teardown. */

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Proc {
  child: ChildProcess;
  /** Every stdout line so far, parsed when it is JSON. */
  lines: Array<Record<string, unknown> | string>;
  /** stderr so far, for failure messages. */
  stderr(): string;
  /** Resolves with the first line (past or future) that matches; rejects on exit or timeout. */
  waitFor(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number, what?: string): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after graceMs; resolves when the process is gone. */
  stop(graceMs?: number): Promise<number | string>;
  kill(): Promise<number | string>;
}

const live = new Set<Proc>();
process.once('exit', () => {
  for (const proc of live) proc.child.kill('SIGKILL');
});

export function startProcess(command: string, args: string[], env: NodeJS.ProcessEnv, label = command): Proc {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Proc['lines'] = [];
  let stderr = '';
  const waiters = new Set<{ match: (line: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }>();
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: Record<string, unknown> | string = text;
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) line = parsed as Record<string, unknown>;
    } catch {
      // a line for people
    }
    lines.push(line);
    if (typeof line === 'object') {
      for (const waiter of waiters) if (waiter.match(line)) waiter.resolve(line);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
  });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const proc: Proc = {
    child,
    lines,
    stderr: () => stderr,
    exited,
    waitFor(match, timeoutMs = 20_000, what = 'a matching line') {
      const seen = lines.find((l): l is Record<string, unknown> => typeof l === 'object' && match(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = {
          match,
          resolve: (l: Record<string, unknown>) => {
            cleanup();
            resolve(l);
          },
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`${label}: no ${what} within ${timeoutMs} ms\nstdout:\n${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}\nstderr:\n${stderr}`));
        }, timeoutMs);
        const onExit = (code: number | string) => {
          cleanup();
          reject(new Error(`${label} exited (${code}) before ${what}\nstdout:\n${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}\nstderr:\n${stderr}`));
        };
        void exited.then(onExit);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(waiter);
        };
        waiters.add(waiter);
      });
    },
    async stop(graceMs = 5000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      live.delete(proc);
      return exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      live.delete(proc);
      return exited;
    },
  };
  live.add(proc);
  void exited.then(() => live.delete(proc));
  return proc;
}
