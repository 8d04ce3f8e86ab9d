/**
 * Storage stays in store/: SQL is written only in store/ (and db/, the connection and migration mechanics),
 * withSystem is called only by the named entries of store/system.ts, and store/ imports nothing above it.
 * Reads the hub's TypeScript sources (src/), so it needs no database.
 */

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** apps/hub/src, seen from the compiled apps/hub/dist/test/storage-boundary.test.js. */
const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sources(path, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Source files by their path under src/, with `/` separators. */
const FILES = new Map(sources(SRC).map((path) => [relative(SRC, path).split(sep).join('/'), readFileSync(path, 'utf8')]));

const inStorage = (file: string) => file.startsWith('store/') || file.startsWith('db/');

/**
 * The code of a file with its comments blanked (a doc comment may well say "select" or "withSystem"), strings kept:
 * a string such as '/v1/*' must not start a comment. Line breaks stay, so line numbers hold.
 */
function code(text: string): string {
  let out = '';
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === quote) quote = undefined;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop - 1;
    } else {
      if (c === "'" || c === '"' || c === '`') quote = c;
      out += c;
    }
  }
  return out;
}

/** Lines of `text` matching `pattern`, as `file:line: text`. */
function hits(file: string, text: string, pattern: RegExp): string[] {
  return code(text)
    .split('\n')
    .flatMap((line, i) => (pattern.test(line) ? [`${file}:${i + 1}: ${line.trim()}`] : []));
}

describe('storage stays in store/', () => {
  test('finds the hub sources', () => {
    assert.ok(FILES.has('store/system.ts') && FILES.has('hub.ts'), `sources read from ${SRC}: ${[...FILES.keys()].slice(0, 5).join(', ')}`);
  });

  test('no file outside store/ and db/ runs a query', () => {
    const found = [...FILES].filter(([file]) => !inStorage(file)).flatMap(([file, text]) => hits(file, text, /\.query\s*(<[^>]*>)?\s*\(|\btx\.exec\s*\(/));
    assert.deepEqual(found, [], 'queries belong in a named store/ function');
  });

  test('no file outside store/ and db/ holds SQL text', () => {
    const sql = /[`'"]\s*(select\s+[\w*(]|insert\s+into\s|update\s+\w+\s+set\s|delete\s+from\s)/i;
    const found = [...FILES].filter(([file]) => !inStorage(file)).flatMap(([file, text]) => hits(file, text, sql));
    assert.deepEqual(found, [], 'SQL belongs in a named store/ function');
  });

  test('withSystem is called only by store/system.ts (and db/ for migrations)', () => {
    const found = [...FILES].filter(([file]) => file !== 'store/system.ts' && !file.startsWith('db/')).flatMap(([file, text]) => hits(file, text, /\bwithSystem\s*\(/));
    assert.deepEqual(found, [], 'an owner transaction goes through withCredentials, withBootstrap or withCrossWorkspace (store/system.ts)');
  });

  test('store/ imports only db/, store/, secrets.ts and packages', () => {
    const found = [...FILES]
      .filter(([file]) => file.startsWith('store/'))
      .flatMap(([file, text]) =>
        [...code(text).matchAll(/\bfrom\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/g)]
          .map((match) => match[1] ?? match[2] ?? '')
          .filter((spec) => spec.startsWith('.') && !spec.startsWith('./') && !spec.startsWith('../db/') && spec !== '../secrets.js')
          .map((spec) => `${file}: ${spec}`),
      );
    assert.deepEqual(found, [], 'store/ is the bottom layer: it imports nothing above it');
  });
});
