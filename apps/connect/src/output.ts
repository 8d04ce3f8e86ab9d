/** What the CLI prints: lines for people, or one JSON object per line with --json. Colours only on a TTY. */

import { ConnectError } from '@private-connect/protocol';

export interface Output {
  json: boolean;
  /** A line for people (skipped with --json). */
  info(line: string): void;
  /** A machine-readable event (printed as JSON with --json, else via `human`). */
  event(value: Record<string, unknown>, human?: string): void;
  /** A structured result (the JSON document with --json, else the human text). */
  result(value: unknown, human: string): void;
  warn(line: string): void;
  error(err: unknown): void;
}

const tty = process.stdout.isTTY === true && !process.env.NO_COLOR;
export const color = {
  green: (s: string) => (tty ? `\x1b[32m${s}\x1b[0m` : s),
  yellow: (s: string) => (tty ? `\x1b[33m${s}\x1b[0m` : s),
  red: (s: string) => (tty ? `\x1b[31m${s}\x1b[0m` : s),
  dim: (s: string) => (tty ? `\x1b[2m${s}\x1b[0m` : s),
  bold: (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s),
};

export function createOutput(json: boolean, debug = false): Output {
  const write = (line: string) => process.stdout.write(line + '\n');
  return {
    json,
    info: (line) => !json && write(line),
    event: (value, human) => (json ? write(JSON.stringify({ time: new Date().toISOString(), ...value })) : human !== undefined && write(human)),
    result: (value, human) => write(json ? JSON.stringify(value, null, 2) : human),
    warn: (line) => (json ? write(JSON.stringify({ type: 'warning', message: line })) : process.stderr.write(color.yellow(`warning: ${line}`) + '\n')),
    error: (err) => {
      const error = err instanceof ConnectError ? err : undefined;
      const message = error ? error.message : err instanceof Error ? err.message : String(err);
      const code = error?.code ?? 'INTERNAL';
      if (json) write(JSON.stringify({ type: 'error', code, message }));
      else process.stderr.write(`${color.red('error:')} ${message} ${color.dim(`(${code})`)}\n`);
      if (debug && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
    },
  };
}

/** Formats rows as aligned columns. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [color.bold(line(header)), ...rows.map(line)].join('\n');
}
