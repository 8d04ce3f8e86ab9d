/** The start-up instructions printed for a person: how to connect the first agents. */

import type { HubConfig } from './config.js';
import type { Hub } from './hub.js';
import { publicUrls } from './public-urls.js';
import { setupLinkUrl } from './store/setup-links.js';

/** Prints the next steps to stderr (not through the logger: the one-time API key must not enter log files). */
export function printWelcome(hub: Hub, config: HubConfig, out: NodeJS.WritableStream = process.stderr): void {
  // The same host name for both (public-urls.ts): sign-in links point at the dashboard URL shown here.
  const { hub: hubUrl, dashboard } = publicUrls(config, hub.port, hub.webPort);
  const lines = [
    '',
    `Private Connect hub is running on ${hubUrl} (database: ${hub.db.kind === 'pglite' ? `embedded, in ${config.dataDir}` : 'PostgreSQL'})`,
    `Dashboard: ${dashboard}`,
    '',
  ];
  if (hub.bootstrap) {
    lines.push(
      'A workspace was created. Its API key is shown ONCE; keep it somewhere safe:',
      '',
      `    ${hub.bootstrap.apiKey}`,
      '',
      'Make the workspace yours: open this setup link and sign in; you become its owner and see its agents and',
      `services in the dashboard. The link works ONCE, for 24 hours (until ${hub.bootstrap.setupExpiresAt.toISOString().slice(0, 16).replace('T', ' ')} UTC):`,
      '',
      `    ${setupLinkUrl(dashboard, hub.bootstrap.setupToken)}`,
      '',
      `Lost it? \`npx connect-hub setup-link\` prints a new one, \`npx connect-hub make-owner <email>\` makes an owner directly${hub.db.kind === 'pglite' ? ' (stop the hub first: the embedded database has one user at a time)' : ''}.`,
      '',
      'Connect an agent on each machine (the CLI is `connect`; install it from this repository with `npm install -g ./apps/connect`, see docs/install.md):',
      '',
      `    connect up --hub ${hubUrl} --api-key ${hub.bootstrap.apiKey}`,
      '    connect expose localhost:5432 --name prod-db     # on the machine that has the service',
      '    connect reach prod-db                            # on the machine that wants it',
      '',
      'Two agents on one box: give each its own config folder, e.g. CONNECT_HOME=/tmp/agent-a connect up ...',
    );
  } else {
    lines.push(
      'Connect an agent with an API key of your workspace:',
      '',
      `    connect up --hub ${hubUrl} --api-key pc_...`,
      '',
      `Lost the key? Create a new one: npx connect-hub create-api-key${hub.db.kind === 'pglite' ? ' (stop the hub first: the embedded database has one user at a time)' : ''}`,
      `Nobody owns the first workspace yet (setup link lost)? \`npx connect-hub setup-link\` prints a new one, \`npx connect-hub make-owner <email>\` makes an owner directly.`,
    );
  }
  out.write(lines.join('\n') + '\n\n');
}
