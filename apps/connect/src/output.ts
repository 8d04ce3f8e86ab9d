/**
 * What the CLI prints: lines for people, or one JSON object per line with --json. Colours only on a TTY and never
 * with NO_COLOR; spinners only on a TTY (stderr), never with --json.
 */

import { stripVTControlCharacters } from 'node:util';
import { createSpinner, type Spinner } from 'nanospinner';
import pc from 'picocolors';
import { ConnectError } from '@private-connect/protocol';

export interface Output {
  json: boolean;
  /** A line for people (skipped with --json). */
  info(line: string): void;
  /** A machine-readable event (printed as JSON with --json, else via `human`). */
  event(value: Record<string, unknown>, human?: string): void;
  /** A structured result (one JSON line with --json, else the human text). */
  result(value: unknown, human: string): void;
  warn(line: string): void;
  error(err: unknown): void;
}

/** True when colours may be used on `stream`: a terminal, and NO_COLOR unset or empty (https://no-color.org). */
export function colorsAllowed(stream: NodeJS.WriteStream = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env.NO_COLOR && env.TERM !== 'dumb';
}

export const color = pc.createColors(colorsAllowed());

/** The spinner on screen now, if any; every printed line clears it first so the two never mix. */
let active: Spinner | undefined;

function clearSpinner(): void {
  active?.clear();
}

export interface Progress {
  /** Changes the text next to the spinner. */
  update(text: string): void;
  /** Removes the spinner (nothing is left on screen). */
  stop(): void;
}

/** A spinner on stderr while something is waited for; does nothing unless stderr is a terminal and --json is off. */
export function progress(out: Pick<Output, 'json'>, text: string): Progress {
  // nanospinner decides by stdout and measures stderr's width (a terminal of width 0 would make it loop forever).
  const terminal = process.stderr.isTTY === true && process.stdout.isTTY === true && (process.stderr.columns ?? 0) > 0 && process.env.TERM !== 'dumb';
  if (out.json || !terminal || active) return { update: () => undefined, stop: () => undefined };
  const spinner = createSpinner(text, { stream: process.stderr }).start();
  active = spinner;
  return {
    update: (next) => void spinner.update({ text: next }),
    stop: () => {
      spinner.clear();
      spinner.stop();
      if (active === spinner) active = undefined;
    },
  };
}

/** Runs `work` with a spinner showing `text`; the spinner goes away when it settles. */
export async function withProgress<T>(out: Pick<Output, 'json'>, text: string, work: () => Promise<T>): Promise<T> {
  const spin = progress(out, text);
  try {
    return await work();
  } finally {
    spin.stop();
  }
}

export function createOutput(json: boolean, debug = false): Output {
  const write = (line: string) => {
    clearSpinner();
    process.stdout.write(line + '\n');
  };
  const writeErr = (line: string) => {
    clearSpinner();
    process.stderr.write(line + '\n');
  };
  return {
    json,
    info: (line) => !json && write(line),
    event: (value, human) => (json ? write(JSON.stringify({ time: new Date().toISOString(), ...value })) : human !== undefined && write(human)),
    // One object per line, like every other --json line: `connect ls --json | jq -c .services[]` and line readers alike.
    result: (value, human) => write(json ? JSON.stringify(value) : human),
    warn: (line) => (json ? write(JSON.stringify({ type: 'warning', message: line })) : writeErr(color.yellow(`warning: ${line}`))),
    error: (err) => {
      const error = err instanceof ConnectError ? err : undefined;
      const message = error ? error.message : err instanceof Error ? err.message : String(err);
      const code = error?.code ?? 'INTERNAL';
      if (json) write(JSON.stringify({ type: 'error', code, message }));
      // One line; a multi-line message (a wrapped library error) keeps its first line only unless --debug.
      else writeErr(`${color.red('error:')} ${debug ? message : (message.split('\n')[0] ?? '')} ${color.dim(`(${code})`)}`);
      if (debug && err instanceof Error && err.stack) writeErr(err.stack);
    },
  };
}

/** Formats rows as aligned columns. */
export function table(header: string[], rows: string[][]): string {
  // Widths of what shows: colour codes take no room on screen.
  const visible = (s: string) => stripVTControlCharacters(s).length;
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i] ?? ''))));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(Math.max(0, widths[i]! - visible(c))))).join('  ');
  return [color.bold(line(header)), ...rows.map(line)].join('\n');
}
