#!/usr/bin/env node
// docs/sdk-reference.md from the SDK's compiled declarations: API Extractor reads packages/sdk/dist/src/index.d.ts
// (what the package exports, with the doc comments) into its model, and this renders one page of it: each export
// with its signature and summary, classes and interfaces with their members. `npm run docs:sdk` writes the page;
// `--check` exits 1 when the committed page differs (a test runs it).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Extractor, ExtractorConfig } from '@microsoft/api-extractor';
import { ApiModel, ApiItemKind } from '@microsoft/api-extractor-model';

const root = fileURLToPath(new URL('..', import.meta.url));
const config = ExtractorConfig.loadFileAndPrepare(`${root}packages/sdk/api-extractor.json`);
const result = Extractor.invoke(config, { localBuild: true, messageCallback: (message) => void (message.handled = true) });
if (!result.succeeded) {
  console.error('sdk-reference: API Extractor failed');
  process.exit(1);
}

/** A TSDoc node as plain Markdown text (paragraphs, code spans, links by their text). */
function text(node) {
  if (!node) return '';
  switch (node.kind) {
    case 'PlainText':
      return node.text;
    case 'CodeSpan':
      return `\`${node.code}\``;
    case 'SoftBreak':
      return ' ';
    case 'LinkTag':
      return node.linkText ?? node.codeDestination?.emitAsTsdoc?.() ?? '';
    case 'FencedCode':
      return `\n\`\`\`${node.language}\n${node.code}\`\`\`\n`;
    case 'Paragraph':
      return `${node.getChildNodes().map(text).join('').trim()}\n\n`;
    default:
      return node.getChildNodes ? node.getChildNodes().map(text).join('') : '';
  }
}
const summary = (item) => (item.tsdocComment ? text(item.tsdocComment.summarySection).trim() : '');
const signature = (item) => item.excerpt.text.replace(/\s+/g, ' ').replace(/^export (declare )?/, '').trim();

const model = new ApiModel();
const pkg = model.loadPackage(config.apiJsonFilePath);
const members = [...pkg.entryPoints[0].members];
const order = [ApiItemKind.Function, ApiItemKind.Class, ApiItemKind.Interface, ApiItemKind.TypeAlias, ApiItemKind.Variable, ApiItemKind.Enum, ApiItemKind.Namespace];
const titles = { Function: 'Functions', Class: 'Classes', Interface: 'Interfaces', TypeAlias: 'Types', Variable: 'Constants', Enum: 'Enums', Namespace: 'Namespaces' };

const lines = [
  '<!-- Generated from the SDK\'s declarations by `npm run docs:sdk` (scripts/sdk-reference.mjs, API Extractor); do not edit. -->',
  '',
  '# `@private-connect/sdk` reference',
  '',
  'Every export of the package, from its compiled declarations and doc comments. How to use them: [sdk.md](sdk.md).',
  'Types it re-exports from `@private-connect/protocol` (errors, API answers) and `@private-connect/api` (requests)',
  'are described where they are defined.',
  '',
];
for (const kind of order) {
  const items = members.filter((m) => m.kind === kind).sort((a, b) => a.displayName.localeCompare(b.displayName));
  if (items.length === 0) continue;
  lines.push(`## ${titles[kind]}`, '');
  for (const item of items) {
    lines.push(`### ${item.displayName}`, '');
    const own = summary(item);
    if (own) lines.push(own, '');
    if (kind === ApiItemKind.Class || kind === ApiItemKind.Interface) {
      const head = signature(item).replace(/\s*\{.*$/, '');
      lines.push('```ts', head, '```', '');
      const rows = item.members
        .filter((m) => !m.displayName.startsWith('_'))
        .map((m) => `| \`${signature(m).replace(/\|/g, '\\|')}\` | ${summary(m).replace(/\n+/g, ' ').replace(/\|/g, '\\|')} |`);
      if (rows.length > 0) lines.push('| member | |', '|---|---|', ...rows, '');
    } else {
      lines.push('```ts', signature(item), '```', '');
    }
  }
}
const page = `${lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
const target = `${root}docs/sdk-reference.md`;
if (process.argv.includes('--check')) {
  let committed = '';
  try {
    committed = readFileSync(target, 'utf8');
  } catch {
    committed = '';
  }
  if (committed !== page) {
    console.error('docs/sdk-reference.md is out of date: run `npm run docs:sdk`');
    process.exit(1);
  }
  console.log('docs/sdk-reference.md is up to date');
} else {
  writeFileSync(target, page);
  console.log(`wrote ${target} (${members.length} exports)`);
}
