#!/usr/bin/env node
// Runs dependency-cruiser (the import rules in .dependency-cruiser.mjs) with TypeScript 6's parser.
// Usage: node scripts/depcruise.mjs [depcruise arguments]   (`npm run check:deps` passes the repository's sources)
// dependency-cruiser reads TypeScript, type-only imports included, through the `typescript` package's JavaScript
// API, which TypeScript 7 (this repository's compiler) no longer has; its versions for Node 20 accept typescript <7.
// So its imports of `typescript` are pointed at the `typescript-6` devDependency (an npm alias), and only its own.
import module from 'node:module';
import { fileURLToPath } from 'node:url';

const cruiser = '/node_modules/dependency-cruiser/';
const redirect = (specifier, parent) =>
  parent?.includes(cruiser) && (specifier === 'typescript' || specifier.startsWith('typescript/'))
    ? `typescript-6${specifier.slice('typescript'.length)}`
    : specifier;

if (typeof module.registerHooks === 'function') {
  // Node >= 22.15: one synchronous hook for import() and require() alike.
  module.registerHooks({ resolve: (specifier, context, next) => next(redirect(specifier, context.parentURL), context) });
} else {
  // Node 20: import() through an off-thread resolve hook, require() (the version check) through the CJS resolver.
  const hook = `const cruiser = ${JSON.stringify(cruiser)};
    export async function resolve(specifier, context, next) {
      const ts = context.parentURL?.includes(cruiser) && (specifier === 'typescript' || specifier.startsWith('typescript/'));
      return next(ts ? 'typescript-6' + specifier.slice(10) : specifier, context);
    }`;
  module.register(`data:text/javascript,${encodeURIComponent(hook)}`);
  const resolveFilename = module._resolveFilename;
  module._resolveFilename = function (request, parent, ...rest) {
    return resolveFilename.call(this, redirect(request, parent?.filename), parent, ...rest);
  };
}

// The package exports no bin path: its main module is src/main/index.mjs, the CLI sits two folders up.
const bin = fileURLToPath(new URL('../../bin/dependency-cruise.mjs', import.meta.resolve('dependency-cruiser')));
process.argv.splice(1, 1, bin);
await import(bin);
