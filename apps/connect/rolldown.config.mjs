// The single-file CLI: dist/connect.mjs runs with plain `node` on a machine without this repository or node_modules.
// Built from the TypeScript output (run `tsc -b` first; `npm run build` does both).
import { defineConfig } from 'rolldown';

export default defineConfig({
  input: 'dist/src/main.js',
  platform: 'node',
  // ws loads these native helpers if present and falls back to plain JavaScript without them.
  external: ['bufferutil', 'utf-8-validate'],
  output: {
    file: 'dist/connect.mjs',
    format: 'esm',
    banner: '#!/usr/bin/env node',
    codeSplitting: false,
    minify: false,
  },
});
