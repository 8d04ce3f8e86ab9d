/**
 * `connect trust [agent]`: the identity keys this machine pinned (known_agents.json), or forget the pins of one
 * agent (by label, id, or a name it was reached by) after its key changed for a reason you know, so that the next
 * connection pins its new key. Like removing a line from ssh's known_hosts.
 */

import { ConnectError } from '@private-connect/protocol';
import { KnownAgents, knownAgentsPath, readConfig } from '@private-connect/sdk';
import type { Context } from '../context.js';
import { color, table } from '../output.js';

export async function trust(ctx: Context, who?: string): Promise<number> {
  const file = knownAgentsPath(ctx.home);
  const known = new KnownAgents(file);
  if (who === undefined) {
    const agents = known.list();
    const human =
      agents.length === 0
        ? `no identity keys pinned yet (${file})`
        : table(
            ['agent', 'id', 'key', 'reached as', 'pinned'],
            agents.map((a) => [a.label, a.agentId, a.fingerprint, a.names.join(', '), a.firstSeen.slice(0, 10)]),
          );
    ctx.out.result({ file, agents }, human);
    return 0;
  }
  const hub = (await readConfig(ctx.home))?.hubUrl;
  const removed = known.trust(who, hub);
  if (removed.length === 0) {
    throw new ConnectError('NOT_FOUND', `no pinned agent matches "${who}" (label, id or service name); connect trust lists them`);
  }
  const lines = removed.map((a) => `${color.green('✓')} forgot ${color.bold(a.label)} (${a.agentId}) key ${a.fingerprint}; the next connection to ${a.names.join(', ')} pins the key it presents then`);
  ctx.out.result({ file, removed }, lines.join('\n'));
  return 0;
}
