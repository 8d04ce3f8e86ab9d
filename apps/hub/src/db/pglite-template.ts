/**
 * The embedded database's data-folder template: an empty cluster made once by the build (`pglite-template-main.js`)
 * and copied into a new data folder, so that a hub's first start does not run PGlite's initdb. That initdb is the
 * peak of a first start (~750 MiB of RSS: a second PostgreSQL instance whose whole 128 MiB WASM heap is copied and
 * restored for every backend run; docs/BENCHMARKS.md, "Memory"), and it takes ~8 s; copying ~40 MB of files costs
 * neither. Without a template, or with one made by another PGlite version, PGlite's own initdb runs as before.
 */

import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** apps/hub/dist/pglite-template, seen from the compiled apps/hub/dist/src/db/pglite-template.js. */
export const TEMPLATE_DIR = fileURLToPath(new URL('../../pglite-template', import.meta.url));

/** File in the template (never copied) that names the PGlite version which made it. */
export const TEMPLATE_STAMP = 'pglite-template.json';

/** The file PGlite looks for to decide that a folder holds a database; copied last. */
const PG_VERSION = 'PG_VERSION';

/** Version of the installed @electric-sql/pglite (its package.json is not in its exports map). */
export function pgliteVersion(): string {
  const entry = fileURLToPath(import.meta.resolve('@electric-sql/pglite'));
  const manifest = JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

/** True when dir holds a template made by the installed PGlite version. */
export function templateUsable(dir: string): boolean {
  try {
    const stamp = JSON.parse(readFileSync(join(dir, TEMPLATE_STAMP), 'utf8')) as { pglite?: unknown };
    return stamp.pglite === pgliteVersion() && existsSync(join(dir, PG_VERSION));
  } catch {
    return false;
  }
}

/**
 * Makes the template at dir (PGlite's initdb in a folder beside it, then renamed into place), replacing an existing
 * one. Needs the memory of an initdb (~750 MiB) once, at build time.
 */
export async function makePgliteTemplate(dir: string = TEMPLATE_DIR): Promise<void> {
  const building = `${dir}.building-${process.pid}`;
  await rm(building, { recursive: true, force: true });
  await mkdir(dirname(dir), { recursive: true });
  try {
    const { PGlite } = await import('@electric-sql/pglite');
    const pglite = await PGlite.create({ dataDir: building });
    await pglite.close();
    await writeFile(join(building, TEMPLATE_STAMP), JSON.stringify({ pglite: pgliteVersion() }) + '\n');
    await rm(dir, { recursive: true, force: true });
    await rename(building, dir);
  } finally {
    await rm(building, { recursive: true, force: true });
  }
}

/**
 * Copies the template into dataDir when dataDir holds no database yet (no PG_VERSION) and the template is usable.
 * PG_VERSION is copied last, so a copy cut short (a kill) is made again on the next start instead of being opened.
 * Returns whether it copied.
 */
export async function seedFromTemplate(dataDir: string, templateDir: string = TEMPLATE_DIR): Promise<boolean> {
  if (existsSync(join(dataDir, PG_VERSION)) || !templateUsable(templateDir)) return false;
  for (const name of await readdir(templateDir)) {
    if (name === PG_VERSION || name === TEMPLATE_STAMP) continue;
    await cp(join(templateDir, name), join(dataDir, name), { recursive: true, force: true });
  }
  await cp(join(templateDir, PG_VERSION), join(dataDir, PG_VERSION));
  return true;
}
