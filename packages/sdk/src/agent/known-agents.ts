/**
 * Identity keys of exposing agents, pinned on first use (`~/.connect/known_agents.json`, like ssh's known_hosts).
 *
 * A pin holds an agent's identity key and the names it was reached by. A stream is refused (E2E_KEY_CHANGED)
 * when a pinned agent shows another key, or when a name pinned to one key is now served by another key (a hub
 * that invents a new agent id for its own key gains nothing). `connect trust <agent>` forgets the pins of an agent
 * (by label, id or service name), so that the next stream pins its current key.
 *
 * Several agent processes share the file: it is re-read when it changed on disk and replaced atomically on write.
 */

import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConnectError, keyFingerprint } from '@private-connect/protocol';

export interface KnownAgent {
  hub: string;
  agentId: string;
  label: string;
  /** Ed25519 public key, base64. */
  key: string;
  fingerprint: string;
  /** Names this agent was reached by from here (service, or alias/service through a share). */
  names: string[];
  firstSeen: string;
}

/** The exposing agent as its signed handshake answer presents it. */
export interface PresentedAgent {
  agentId: string;
  label: string;
  identityKey: string;
}

interface FileShape {
  version: 1;
  agents: KnownAgent[];
}

export class KnownAgents {
  private agents: KnownAgent[] = [];
  private loadedMtime = -1;

  /** `file` undefined: pins live in memory for the life of the process. */
  constructor(readonly file?: string) {}

  /**
   * Checks the agent behind `name` against the pins of `hub`: returns 'pinned' when it matches, 'new' when it was
   * pinned now (first use); throws E2E_KEY_CHANGED when the key differs from a pin.
   */
  check(hub: string, name: string, peer: PresentedAgent): 'pinned' | 'new' {
    this.reload();
    const sameAgent = this.agents.find((a) => a.hub === hub && a.agentId === peer.agentId);
    if (sameAgent && sameAgent.key !== peer.identityKey) {
      throw keyChanged(
        `agent "${sameAgent.label}" (${sameAgent.agentId}) was pinned with key ${sameAgent.fingerprint} and now presents ${keyFingerprint(peer.identityKey)}`,
        sameAgent.label,
      );
    }
    const sameName = this.agents.find((a) => a.hub === hub && a.names.includes(name) && a.key !== peer.identityKey);
    if (sameName) {
      throw keyChanged(
        `"${name}" was served by agent "${sameName.label}" with key ${sameName.fingerprint}; now agent "${peer.label}" (${peer.agentId}) serves it with key ${keyFingerprint(peer.identityKey)}`,
        sameName.label,
      );
    }
    if (sameAgent) {
      if (sameAgent.names.includes(name)) return 'pinned';
      sameAgent.names.push(name);
      this.save();
      return 'pinned';
    }
    this.agents.push({
      hub,
      agentId: peer.agentId,
      label: peer.label,
      key: peer.identityKey,
      fingerprint: keyFingerprint(peer.identityKey),
      names: [name],
      firstSeen: new Date().toISOString(),
    });
    this.save();
    return 'new';
  }

  /** Forgets the pins matching `who` (agent label, agent id, or a name it was reached by); returns them. */
  trust(who: string, hub?: string): KnownAgent[] {
    this.reload();
    const matches = (a: KnownAgent) => (hub === undefined || a.hub === hub) && (a.agentId === who || a.label === who || a.names.includes(who));
    const removed = this.agents.filter(matches);
    if (removed.length > 0) {
      this.agents = this.agents.filter((a) => !matches(a));
      this.save();
    }
    return removed;
  }

  list(): KnownAgent[] {
    this.reload();
    return this.agents.map((a) => ({ ...a, names: [...a.names] }));
  }

  private reload(): void {
    if (!this.file) return;
    let mtime: number;
    try {
      mtime = statSync(this.file).mtimeMs;
    } catch {
      this.agents = [];
      this.loadedMtime = -1;
      return;
    }
    if (mtime === this.loadedMtime) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.file, 'utf8'));
    } catch (err) {
      throw new ConnectError('BAD_REQUEST', `${this.file} is not valid JSON (${err instanceof Error ? err.message : String(err)}); fix or delete it`);
    }
    const agents = (parsed as Partial<FileShape> | null)?.agents;
    if (!Array.isArray(agents)) throw new ConnectError('BAD_REQUEST', `${this.file} has no "agents" list; fix or delete it`);
    this.agents = agents.filter(isKnownAgent);
    this.loadedMtime = mtime;
  }

  private save(): void {
    if (!this.file) return;
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const body: FileShape = { version: 1, agents: this.agents };
    writeFileSync(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file);
    this.loadedMtime = statSync(this.file).mtimeMs;
  }
}

function keyChanged(detail: string, label: string): ConnectError {
  return new ConnectError(
    'E2E_KEY_CHANGED',
    `WARNING: IDENTITY KEY CHANGED. ${detail}. Either that agent was set up again (a new ~/.connect), or something ` +
      `between you and it, the hub included, is intercepting the connection. Refusing to send anything. ` +
      `If you know why it changed: connect trust ${label}`,
  );
}

function isKnownAgent(value: unknown): value is KnownAgent {
  const a = value as Partial<KnownAgent> | null;
  return !!a && typeof a.hub === 'string' && typeof a.agentId === 'string' && typeof a.key === 'string' && typeof a.label === 'string' && Array.isArray(a.names);
}
