/** The expiry / methods / paths / rate fields that shares and public links have in common. */

import { parseList } from './components.js';

export interface LimitsValue {
  expiresIn: string;
  methods: string;
  paths: string;
  rate: string;
}

export const EMPTY_LIMITS: LimitsValue = { expiresIn: '7d', methods: '', paths: '', rate: '' };

/** The request fields for the API: empty inputs are left out (no limit). */
export function limitsBody(value: LimitsValue): { expiresIn: string; methods?: string[]; paths?: string[]; rate?: number } {
  const methods = parseList(value.methods.toUpperCase());
  const paths = parseList(value.paths);
  const rate = value.rate.trim() === '' ? undefined : Number(value.rate);
  return { expiresIn: value.expiresIn.trim(), ...(methods ? { methods } : {}), ...(paths ? { paths } : {}), ...(rate !== undefined ? { rate } : {}) };
}

export function LimitsFields({ value, onChange }: { value: LimitsValue; onChange: (value: LimitsValue) => void }) {
  const set = (field: keyof LimitsValue) => (event: { target: { value: string } }) => onChange({ ...value, [field]: event.target.value });
  return (
    <>
      <label>
        Expires in
        <input value={value.expiresIn} onChange={set('expiresIn')} required pattern="\d+[mhdw]" title="A duration: 30m, 12h, 7d, 2w" />
      </label>
      <label>
        HTTP methods (optional)
        <input value={value.methods} onChange={set('methods')} placeholder="GET, HEAD" />
      </label>
      <label>
        Path prefixes (optional)
        <input value={value.paths} onChange={set('paths')} placeholder="/api/v1/" />
      </label>
      <label>
        Rate per minute (optional)
        <input value={value.rate} onChange={set('rate')} type="number" min={1} inputMode="numeric" />
      </label>
    </>
  );
}

/** "GET, HEAD · /api/ · 60/min" or "no limits". */
export function describeLimits(item: { methods: string[] | null; paths: string[] | null; ratePerMin: number | null }): string {
  const parts = [item.methods?.join(', '), item.paths?.join(', '), item.ratePerMin ? `${item.ratePerMin}/min` : undefined].filter(Boolean);
  return parts.length > 0 ? parts.join(' · ') : 'no limits';
}
