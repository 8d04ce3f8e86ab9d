/** `node dist/src/main.js [--name <service>]`: the webhook-link walk-through against the hub of CONNECT_HOME (~/.connect). */

import { parseArgs } from 'node:util';
import { runWebhookLink } from './webhook-link.js';

const { values } = parseArgs({ options: { name: { type: 'string' } } });
try {
  const result = await runWebhookLink({ ...(values.name ? { name: values.name } : {}), log: (line) => console.log(line) });
  console.log(JSON.stringify(result));
} catch (err) {
  const { code, message } = err as { code?: string; message?: string };
  console.error(`webhook-link failed: ${code ?? 'INTERNAL'}: ${message ?? String(err)}`);
  process.exitCode = 1;
}
