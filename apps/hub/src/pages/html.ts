/** Escaped HTML for the hub's few server-rendered pages (sign-in, device approval). */

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

const STYLE = `
  :root { color-scheme: light dark; font-family: system-ui, sans-serif; }
  body { margin: 0; display: grid; place-items: center; min-height: 100vh; background: Canvas; }
  main { width: min(28rem, 100% - 2rem); padding: 2rem 0; }
  h1 { font-size: 1.4rem; }
  label { display: block; margin: 1rem 0 .3rem; font-weight: 600; }
  input, select, button { font: inherit; padding: .55rem .7rem; width: 100%; box-sizing: border-box; }
  button { margin-top: 1.2rem; cursor: pointer; font-weight: 600; }
  .code { font-family: ui-monospace, monospace; font-size: 1.6rem; letter-spacing: .15em; }
  .error { border-left: 4px solid #c0392b; padding: .4rem .8rem; }
  .ok { border-left: 4px solid #27ae60; padding: .4rem .8rem; }
  .muted { opacity: .75; font-size: .9rem; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }
  dt { font-weight: 600; }
`;

/** A whole page: no scripts, one inline stylesheet, forms post to the same origin. */
export function page(title: string, body: SafeHtml): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${title} · Private Connect</title><style>${new SafeHtml(STYLE)}</style></head>
<body><main>${body}</main></body></html>`.value;
}
