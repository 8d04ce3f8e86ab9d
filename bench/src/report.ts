/** The plain-text table `npm run bench` prints. */

/** A plain-text table: first column left-aligned, the others right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => widths.map((w, c) => (c === 0 ? (r[c] ?? '').padEnd(w) : (r[c] ?? '').padStart(w))).join('  ').trimEnd();
  const rule = '-'.repeat(widths.reduce((a, w) => a + w, 0) + 2 * (widths.length - 1));
  return [line(header), rule, ...rows.map(line)].join('\n');
}

export const fixed = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
export const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
export const ratio = (tunnel: number, direct: number): string => (direct > 0 ? `${(tunnel / direct).toFixed(2)}x` : 'n/a');
/** "+42 µs", or "-3 µs" when the tunnel side came out faster (noise, on small differences). */
export const added = (tunnel: number, direct: number): string => {
  const d = tunnel - direct;
  return Number.isFinite(d) ? `${d < 0 ? '-' : '+'}${int(Math.abs(d))} µs` : 'n/a';
};
export const pct = (share: number): string => (Number.isFinite(share) ? `${Math.round(share * 100)}%` : 'n/a');
