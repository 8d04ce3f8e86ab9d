/** The tables `npm run bench` prints (plain text) and writes into docs/BENCHMARKS.md (Markdown), and their cells. */

/** A plain-text table: first column left-aligned, the others right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => widths.map((w, c) => (c === 0 ? (r[c] ?? '').padEnd(w) : (r[c] ?? '').padStart(w))).join('  ').trimEnd();
  const rule = '-'.repeat(widths.reduce((a, w) => a + w, 0) + 2 * (widths.length - 1));
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** Text for Markdown outside code: `<` and `>` as entities, so that `<token>` shows instead of vanishing as a tag. */
export const markdownText = (s: string): string => s.replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * The same table in Markdown: first column left-aligned, the others right-aligned; a first cell that starts with
 * spaces (a ratio row under its figure) keeps its indent.
 */
export function markdownTable(header: string[], rows: string[][]): string {
  const esc = (s: string) => markdownText(s.replace(/\|/g, '\\|'));
  const line = (r: string[]) => `| ${r.map((c, i) => (i === 0 && c.startsWith('  ') ? `&nbsp;&nbsp;${esc(c.trim())}` : esc(c))).join(' | ')} |`;
  return [line(header), `|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`, ...rows.map(line)].join('\n');
}

export const fixed = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
export const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
export const ratio = (tunnel: number, direct: number): string => (direct > 0 && Number.isFinite(tunnel) ? `${(tunnel / direct).toFixed(2)}x` : 'n/a');
/** "+42 µs", or "-3 µs" when the tunnel side came out faster (noise, on small differences). */
export const added = (tunnel: number, direct: number): string => {
  const d = tunnel - direct;
  return Number.isFinite(d) ? `${d < 0 ? '-' : '+'}${int(Math.abs(d))} µs` : 'n/a';
};
export const pct = (share: number): string => (Number.isFinite(share) ? `${Math.round(share * 100)}%` : 'n/a');
