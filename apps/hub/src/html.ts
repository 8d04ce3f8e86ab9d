/** Escaped HTML for the hub's few server-rendered pages (sign-in, device approval, setup, a public link's refusal). */

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** A piece of HTML that is already safe: `html` templates nest without double escaping. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

type Part = SafeHtml | string | number | undefined | null | false | readonly Part[];

function render(part: Part): string {
  if (part === undefined || part === null || part === false) return '';
  if (part instanceof SafeHtml) return part.value;
  if (Array.isArray(part)) return part.map(render).join('');
  return escapeHtml(String(part));
}

/** Tagged template: interpolated values are escaped unless they are SafeHtml (or arrays of it). */
export function html(strings: TemplateStringsArray, ...values: Part[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new SafeHtml(out);
}

/** The dashboard's look (apps/web/src/styles.css: colours, radius, controls), for pages served before it loads. */
const STYLE = `
  :root { --fg: #1b1f24; --muted: #57606a; --bg: #f6f8fa; --card: #fff; --line: #d0d7de; --accent: #0b5cad;
    --ok: #1a7f37; --bad: #b42318; font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; color: var(--fg);
    background: var(--bg); line-height: 1.45; }
  * { box-sizing: border-box; }
  body { margin: 0; min-height: 100vh; display: grid; place-items: start center; padding: 12vh 1rem 2rem; }
  main { width: min(26rem, 100%); }
  .brand { display: flex; align-items: center; justify-content: center; gap: .55rem; font-weight: 700; font-size: 1.05rem; margin-bottom: 1.25rem; }
  .brand svg { width: 1.9rem; height: 1.9rem; }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 1.5rem; box-shadow: 0 1px 3px rgba(27,31,36,.08); }
  h1 { font-size: 1.35rem; margin: 0 0 .5rem; }
  p { margin: .5rem 0; }
  a { color: var(--accent); }
  label { display: block; margin: 1rem 0 .3rem; font-size: .9rem; font-weight: 600; }
  input, select, button { font: inherit; padding: .55rem .7rem; width: 100%; border: 1px solid var(--line); border-radius: 6px; background: #fff; color: var(--fg); }
  button { margin-top: 1.1rem; cursor: pointer; font-weight: 600; background: var(--accent); border-color: var(--accent); color: #fff; }
  button:hover { background: #094d91; }
  :focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
  code { font-family: ui-monospace, 'SFMono-Regular', Menlo, monospace; font-size: .9em; background: var(--bg); padding: .1rem .3rem; border-radius: 4px; }
  .code { font-family: ui-monospace, monospace; font-size: 1.6rem; letter-spacing: .15em; }
  .error { border-left: 4px solid var(--bad); padding: .4rem .8rem; color: var(--bad); background: #fdf1f0; border-radius: 0 6px 6px 0; }
  .ok { border-left: 4px solid var(--ok); padding: .4rem .8rem; background: #eef8f1; border-radius: 0 6px 6px 0; }
  .muted { color: var(--muted); font-size: .9rem; }
  .foot { text-align: center; margin-top: 1rem; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }
  dt { font-weight: 600; }
  dd { margin: 0; overflow-wrap: anywhere; }
`;

/** The dashboard's mark (apps/web/src/app.tsx): two joined nodes. */
const MARK = `<svg viewBox="0 0 24 24" aria-hidden="true"><rect width="24" height="24" rx="6" fill="#0b5cad"/><circle cx="7.5" cy="12" r="3" fill="none" stroke="#fff" stroke-width="2"/><circle cx="16.5" cy="12" r="3" fill="none" stroke="#fff" stroke-width="2"/><path d="M10.5 12h3" stroke="#fff" stroke-width="2"/></svg>`;

/** A whole page: no scripts, one inline stylesheet, forms post to the same origin. */
export function page(title: string, body: SafeHtml): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${title} · Private Connect</title><style>${new SafeHtml(STYLE)}</style></head>
<body><main><div class="brand">${new SafeHtml(MARK)}<span>Private Connect</span></div><div class="card">${body}</div></main></body></html>`.value;
}
