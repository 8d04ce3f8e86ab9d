// Import rules for the whole repository, checked by `npm run check:deps` (dependency-cruiser) in .ci/run.
// docs/architecture.md explains the layers these rules keep one-way. Paths are relative to the repository root.
// Type-only imports count: a circle through `import type` is still a circle for whoever reads the code.

/** The hub's layers, lowest first; each may import only the layers before it (and the hub's top-level helpers). */
const hub = 'apps/hub/src';
const above = (...dirs) => `^${hub}/(${dirs.join('|')})/`;
// The wiring on top: hub.ts, and services.ts (the type of the one services object it builds, every layer's deps).
const hubEntry = `^${hub}/(hub|services)\\.ts$`;

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import circle (type-only imports included). Move what both sides need into a lower module.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-app-to-other-app',
      severity: 'error',
      comment: 'An app imports another app. What two apps share belongs in packages/.',
      from: { path: '^apps/([^/]+)/' },
      // A workspace import resolves to apps/<name>/dist/ once built, and stays '@private-connect/<name>' before.
      to: { path: '^(apps/|@private-connect/)(hub|connect|web)(/|$)', pathNot: '^(apps/|@private-connect/)$1(/|$)' },
    },
    {
      name: 'no-package-to-app',
      severity: 'error',
      comment: 'A package imports an app: arrows point from apps to packages, never back.',
      from: { path: '^packages/' },
      to: { path: '^(apps/|@private-connect/(hub|connect|web)(/|$))' },
    },
    {
      name: 'protocol-imports-no-package',
      severity: 'error',
      comment: 'packages/protocol depends on nothing: the other packages and the apps build on it.',
      from: { path: '^packages/protocol/' },
      to: { path: '^(packages/(?!protocol/)|@private-connect/(?!protocol(/|$)))' },
    },
    {
      name: 'tunnel-api-not-sdk',
      severity: 'error',
      comment: 'packages/tunnel and packages/api sit under the SDK (the hub uses them, and must not get the agent runtime through them).',
      from: { path: '^packages/(tunnel|api)/' },
      to: { path: '^(packages/sdk/|@private-connect/sdk(/|$))' },
    },
    {
      name: 'hub-not-sdk',
      severity: 'error',
      comment: 'The hub imports the SDK (the agent runtime). What both sides need lives in @private-connect/tunnel or protocol.',
      from: { path: '^apps/hub/src/' },
      to: { path: '^(packages/sdk/|@private-connect/sdk(/|$))' },
    },
    {
      name: 'hub-store-is-lowest',
      severity: 'error',
      comment: 'store/ and db/ are the lowest layer: they import nothing above them.',
      from: { path: `^${hub}/(store|db)/` },
      to: { path: [above('auth', 'relay', 'sharing', 'cluster', 'api', 'pages'), hubEntry] },
    },
    {
      name: 'hub-auth-below-relay',
      severity: 'error',
      comment: 'auth/ sits on store/: it imports neither relay, sharing, cluster, api nor pages.',
      from: { path: `^${hub}/auth/` },
      to: { path: [above('relay', 'sharing', 'cluster', 'api', 'pages'), hubEntry] },
    },
    {
      name: 'hub-relay-below-sharing',
      severity: 'error',
      comment: 'relay/ imports neither api/, pages/ nor sharing/ (revocation cuts live in relay/).',
      from: { path: `^${hub}/relay/` },
      to: { path: [above('sharing', 'cluster', 'api', 'pages'), hubEntry] },
    },
    {
      name: 'hub-sharing-cluster-below-api',
      severity: 'error',
      comment: 'sharing/ and cluster/ sit under the routes: they import neither api/ nor pages/.',
      from: { path: `^${hub}/(sharing|cluster)/` },
      to: { path: [above('api', 'pages'), hubEntry] },
    },
    {
      name: 'hub-api-not-pages',
      severity: 'error',
      comment: 'api/ does not import pages/: what both need lives in a lower module.',
      from: { path: `^${hub}/api/` },
      to: { path: [above('pages'), hubEntry] },
    },
    {
      name: 'hub-pages-not-wiring',
      severity: 'error',
      comment: 'pages/ are routes: they take what they need as deps, and import neither hub.ts nor services.ts.',
      from: { path: `^${hub}/pages/` },
      to: { path: hubEntry },
    },
  ],
  options: {
    // Workspace packages resolve through node_modules to their dist/ output: checked as a target, not followed.
    doNotFollow: { path: ['node_modules', '/dist/'] },
    // Type-only imports are dependencies too (parsed with TypeScript 6: scripts/depcruise.mjs says why).
    tsPreCompilationDeps: true,
    moduleSystems: ['es6', 'cjs'],
    enhancedResolveOptions: {
      extensions: ['.ts', '.tsx', '.js', '.mjs', '.cjs', '.d.ts'],
      exportsFields: ['exports'],
      conditionNames: ['import', 'types', 'default', 'node'],
    },
    reporterOptions: { text: { highlightFocused: false } },
  },
};
