/**
 * The reaching agent's side of direct paths (docs/direct.md). For each service it reaches, it asks the hub for the
 * exposing agent's candidates and a ticket, tries every candidate at once, and keeps the first connection that
 * proves to be that agent. New streams go over it while it answers; they go through the hub from the start (no
 * waiting), whenever it is quiet for DIRECT_SUSPECT_MS or an open on it goes unanswered, and once it is gone (a new
 * try follows, sooner at first, then less often). Tickets are renewed before they expire.
 */

import { connect as netConnect, type Socket } from 'node:net';
import {
  ConnectError,
  DIRECT_OPEN_TIMEOUT_MS,
  DIRECT_PROBE_TIMEOUT_MS,
  FRAME_HEADER_SIZE,
  FrameDecoder,
  FrameType,
  OPEN_TIMEOUT_MS,
  encodeJsonFrame,
  errorFromBody,
  makeDirectHello,
  parseErrorPayload,
  verifyDirectWelcome,
  type DirectAnswer,
  type E2ESession,
  type Frame,
  type Identity,
  type ReachPath,
} from '@private-connect/protocol';
import { TunnelStream } from '@private-connect/tunnel';
import { DirectLink } from './direct-link.js';
import type { StreamHandshakes } from '../agent/stream-handshake.js';

/** How soon a failed try is followed by another: doubling from the first to the last. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 15_000;
/** A service the hub gave no direct path for is asked about again this often (the exposing agent may change). */
const UNAVAILABLE_RETRY_MS = 30_000;

export interface DirectPathsOptions {
  identity: Identity;
  handshakes: StreamHandshakes;
  /** Asks the hub for a direct path to `name` (the `direct` control op). */
  ask(name: string): Promise<DirectAnswer>;
  /** The path of `name`'s new streams changed. */
  changed(path: ReachPath): void;
  /** A stream on a direct connection was reset for another reason than its local end closing. */
  streamFailed?(stream: TunnelStream, code: string, message: string, by: 'local' | 'remote'): void;
}

type Ticket = NonNullable<DirectAnswer['direct']>;

interface PathState {
  name: string;
  path: ReachPath;
  link: DirectLink | undefined;
  ticket: Ticket | undefined;
  /** Local time at which the ticket is renewed. */
  renewAt: number;
  timer: NodeJS.Timeout | undefined;
  failures: number;
  trying: boolean;
  stopped: boolean;
}

interface PendingOpen {
  resolve(frame: Frame): void;
  timer: NodeJS.Timeout;
}

export class DirectPaths {
  private readonly states = new Map<string, PathState>();
  private readonly opens = new WeakMap<DirectLink, Map<number, PendingOpen>>();

  constructor(private readonly options: DirectPathsOptions) {}

  /** Starts looking for a direct path to `name` (a reach listens for it). */
  watch(name: string): void {
    if (this.states.has(name)) return;
    const state: PathState = {
      name,
      path: { name, mode: 'relay', reason: 'looking for a direct path' },
      link: undefined,
      ticket: undefined,
      renewAt: 0,
      timer: undefined,
      failures: 0,
      trying: false,
      stopped: false,
    };
    this.states.set(name, state);
    this.options.changed(state.path);
    void this.attempt(state);
  }

  /** Stops using and looking for a direct path to `name`. */
  unwatch(name: string): void {
    const state = this.states.get(name);
    if (!state) return;
    this.states.delete(name);
    state.stopped = true;
    clearTimeout(state.timer);
    state.link?.close(new ConnectError('STREAM_CLOSED', 'the reach was closed'));
  }

  /** The path of each watched service. */
  paths(): ReachPath[] {
    return [...this.states.values()].map((s) => s.path);
  }

  /** Looks again now (the hub connection came back, or the hub ended sessions with that agent). */
  retryAll(): void {
    for (const state of this.states.values()) if (!state.link && !state.trying) this.schedule(state, 0);
  }

  /** The hub ended sessions with `agentId`: its direct connections go too, and are looked for again. */
  endWith(agentId: string): void {
    for (const state of this.states.values()) {
      if (state.ticket?.agentId === agentId) {
        state.link?.close(new ConnectError('PEER_GONE', 'the hub ended the sessions with that agent'));
        state.ticket = undefined;
      }
    }
  }

  close(): void {
    for (const name of [...this.states.keys()]) this.unwatch(name);
  }

  /**
   * A stream to `name` over its direct connection, answered by the exposing agent; undefined when there is none in
   * use, or when the open went unanswered (it then goes through the hub: its client has sent nothing yet). An open
   * the exposing agent refused rejects as one through the hub would.
   */
  async open(name: string): Promise<TunnelStream | undefined> {
    const state = this.states.get(name);
    const link = state?.link;
    if (!state || !link?.usable) return undefined;
    if (Date.now() >= state.renewAt) this.schedule(state, 0);
    return this.openOn(state, link, false);
  }

  private async openOn(state: PathState, link: DirectLink, retried: boolean): Promise<TunnelStream | undefined> {
    const { payload, plan } = await this.options.handshakes.offer(state.name);
    if (link.closed) {
      plan?.kind === 'handshake' && plan.fail();
      return undefined;
    }
    const id = link.allocateId();
    const stream = new TunnelStream(id, link, state.name);
    const answer = await this.answer(link, id, encodeJsonFrame(FrameType.OPEN, id, payload));
    if (!answer) {
      plan?.kind === 'handshake' && plan.fail();
      if (!link.closed) {
        // Unanswered: this path is in doubt until it speaks again; the stream goes through the hub.
        link.send(encodeJsonFrame(FrameType.RESET, id, { code: 'OPEN_TIMEOUT', message: 'no answer on the direct connection' }));
        this.relayed(state, `the direct connection did not answer an open within ${DIRECT_OPEN_TIMEOUT_MS} ms`);
      }
      return undefined;
    }
    if (answer.type === FrameType.OPEN_ERROR) {
      const error = errorFromBody(parseErrorPayload(answer.payload));
      this.options.handshakes.failed(state.name, plan, error.code);
      if (error.code === 'DIRECT_REFUSED' || error.code === 'SERVICE_NOT_FOUND') {
        // The ticket ran out or was revoked, or that process no longer serves the service (it moved to another
        // process of the agent): this stream goes through the hub, which decides again.
        state.renewAt = 0;
        this.schedule(state, 0);
        return undefined;
      }
      if (!retried && (error.code === 'E2E_SESSION_UNKNOWN' || (error.code === 'E2E_HANDSHAKE_FAILED' && plan?.kind === 'handshake'))) {
        return this.openOn(state, link, true);
      }
      throw error;
    }
    let session: E2ESession | undefined;
    try {
      session = this.options.handshakes.finish(state.name, plan, answer.payload);
    } catch (err) {
      const error = err instanceof ConnectError ? err : new ConnectError('E2E_HANDSHAKE_FAILED', String(err));
      link.send(encodeJsonFrame(FrameType.RESET, id, { code: error.code, message: error.message }));
      throw error;
    }
    stream.session = session;
    link.streams.set(id, stream);
    return stream;
  }

  /** Sends an OPEN and waits for its answer; undefined after DIRECT_OPEN_TIMEOUT_MS or when the link goes. */
  private answer(link: DirectLink, id: number, frame: Buffer): Promise<Frame | undefined> {
    let pending = this.opens.get(link);
    if (!pending) {
      const map = new Map<number, PendingOpen>();
      pending = map;
      this.opens.set(link, map);
      link.on('answer', (f) => {
        const open = map.get(f.streamId);
        if (!open) return;
        map.delete(f.streamId);
        clearTimeout(open.timer);
        open.resolve(f);
      });
      link.on('closed', () => {
        for (const [key, open] of map) {
          map.delete(key);
          clearTimeout(open.timer);
          open.resolve(undefined as unknown as Frame);
        }
      });
    }
    const map = pending;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        map.delete(id);
        resolve(undefined);
      }, DIRECT_OPEN_TIMEOUT_MS);
      map.set(id, { resolve, timer });
      link.send(frame);
    });
  }

  private schedule(state: PathState, delayMs: number): void {
    if (state.stopped) return;
    clearTimeout(state.timer);
    state.timer = setTimeout(() => void this.attempt(state), delayMs);
    state.timer.unref();
  }

  private set(state: PathState, path: Omit<ReachPath, 'name'>): void {
    const next: ReachPath = { name: state.name, ...path };
    if (next.mode === state.path.mode && next.via === state.path.via && next.reason === state.path.reason) return;
    state.path = next;
    this.options.changed(next);
  }

  private relayed(state: PathState, reason: string): void {
    this.set(state, { mode: 'relay', reason });
  }

  /** Asks the hub, tries the candidates, and keeps the first proven connection (or says why there is none). */
  private async attempt(state: PathState): Promise<void> {
    if (state.stopped || state.trying) return;
    state.trying = true;
    try {
      let answer: DirectAnswer;
      try {
        answer = await this.options.ask(state.name);
      } catch (err) {
        if (!state.link) this.relayed(state, `could not ask the hub for a direct path: ${err instanceof Error ? err.message : String(err)}`);
        return this.retryLater(state);
      }
      if (state.stopped) return;
      if (!answer.direct) {
        state.ticket = undefined;
        state.link?.close(new ConnectError('DIRECT_UNAVAILABLE', answer.unavailable?.reason ?? 'no direct path'));
        state.link = undefined;
        this.relayed(state, answer.unavailable?.reason ?? 'the hub gave no direct path');
        return this.schedule(state, UNAVAILABLE_RETRY_MS);
      }
      const ticket = answer.direct;
      const lifetime = ticketLifetime(ticket.ticket);
      const outcome = await this.probe(ticket, state.link?.remote);
      if (state.stopped) {
        if ('link' in outcome) outcome.link.close();
        return;
      }
      if ('failed' in outcome) {
        if (!state.link?.usable) this.relayed(state, outcome.failed);
        return this.retryLater(state);
      }
      // A new ticket's connection replaces the old one; streams on the old one finish there (it closes when idle).
      const old = state.link;
      state.link = outcome.link;
      state.ticket = ticket;
      state.failures = 0;
      state.renewAt = Date.now() + lifetime * 0.6;
      this.follow(state, outcome.link, outcome.via);
      this.set(state, { mode: 'direct', via: outcome.via });
      if (old && old !== outcome.link) retire(old);
      this.schedule(state, lifetime * 0.6);
    } finally {
      state.trying = false;
    }
  }

  private retryLater(state: PathState): void {
    const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** state.failures);
    state.failures++;
    this.schedule(state, delay);
  }

  /** Keeps the path's state in step with its link: quiet, healthy again, gone. */
  private follow(state: PathState, link: DirectLink, via: string): void {
    link.on('suspect', () => state.link === link && this.relayed(state, 'the direct connection stopped answering'));
    link.on('healthy', () => state.link === link && this.set(state, { mode: 'direct', via }));
    link.on('streamFailed', ({ stream, error, by }) => this.options.streamFailed?.(stream, error.code, error.message, by));
    link.on('closed', (error) => {
      if (state.link !== link) return;
      state.link = undefined;
      this.relayed(state, `the direct connection closed: ${error.message}`);
      this.retryLater(state);
    });
  }

  /** Tries every candidate at once (`prefer` first in the list); the first that proves itself wins. */
  private probe(ticket: Ticket, prefer?: string): Promise<{ link: DirectLink; via: string } | { failed: string }> {
    const candidates = [...ticket.candidates].sort((a, b) => Number(`${b.host}:${b.port}` === prefer) - Number(`${a.host}:${a.port}` === prefer));
    if (candidates.length === 0) return Promise.resolve({ failed: 'the exposing agent gave no address' });
    return new Promise((resolve) => {
      let left = candidates.length;
      let won = false;
      const errors: string[] = [];
      for (const candidate of candidates) {
        const via = `${candidate.host.includes(':') ? `[${candidate.host}]` : candidate.host}:${candidate.port}`;
        dial(candidate.host, candidate.port, this.options.identity, ticket).then(
          ({ socket, rest }) => {
            if (won) return void socket.destroy();
            won = true;
            resolve({ link: new DirectLink(socket, true, rest), via });
          },
          (err: Error) => {
            errors.push(`${via} (${err.message})`);
            if (--left === 0 && !won) resolve({ failed: `no address of the exposing agent answered: ${errors.join(', ')}` });
          },
        );
      }
    });
  }
}

/** Closes a replaced connection once its streams ended (new streams no longer go to it). */
function retire(link: DirectLink): void {
  if (link.streams.size === 0) return link.close(new ConnectError('STREAM_CLOSED', 'replaced by a connection with a newer ticket'));
  const check = setInterval(() => {
    if (link.closed || link.streams.size === 0) {
      clearInterval(check);
      link.close(new ConnectError('STREAM_CLOSED', 'replaced by a connection with a newer ticket'));
    }
  }, 1000);
  check.unref();
}

/** A ticket's lifetime (exp - iat) from its claims; 5 minutes when they cannot be read. */
function ticketLifetime(ticket: string): number {
  try {
    const claims = JSON.parse(Buffer.from(ticket.slice(0, ticket.indexOf('.')), 'base64url').toString('utf8')) as { iat?: unknown; exp?: unknown };
    if (typeof claims.iat === 'number' && typeof claims.exp === 'number' && claims.exp > claims.iat) return claims.exp - claims.iat;
  } catch {
    // fall through
  }
  return 5 * 60_000;
}

/**
 * One candidate: TCP connect, hello, and the welcome signed by the exposing agent's identity key. Resolves with the
 * socket (paused) and any bytes read past the welcome.
 */
function dial(host: string, port: number, identity: Identity, ticket: Ticket): Promise<{ socket: Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port, noDelay: true });
    const decoder = new FrameDecoder();
    const hello = makeDirectHello(identity, ticket.ticket, Date.now());
    let done = false;
    const fail = (message: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(message));
    };
    const timer = setTimeout(() => fail('no answer'), Math.min(DIRECT_PROBE_TIMEOUT_MS, OPEN_TIMEOUT_MS));
    socket.on('error', (err: Error & { code?: string }) => fail(err.code === 'ECONNREFUSED' ? 'refused' : (err.code ?? err.message)));
    socket.on('close', () => fail('closed without an answer'));
    socket.on('connect', () => socket.write(encodeJsonFrame(FrameType.CONTROL, 0, hello)));
    const onData = (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch {
        return fail('not a direct port');
      }
      if (frames.length === 0) {
        if (decoder.pending > FRAME_HEADER_SIZE + 4096) fail('not a direct port');
        return;
      }
      const [first, ...more] = frames;
      let welcome: unknown;
      try {
        welcome = first!.type === FrameType.CONTROL ? JSON.parse(first!.payload.toString('utf8')) : undefined;
      } catch {
        welcome = undefined;
      }
      if (!verifyDirectWelcome(welcome, hello, ticket.identityKey)) return fail('not the exposing agent');
      done = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      socket.pause();
      // Frames read with the welcome (none are expected before an OPEN) go back in front of the link's reads.
      const rest = more.length > 0 ? Buffer.concat(more.map(reencode)) : Buffer.alloc(0);
      resolve({ socket, rest });
    };
    socket.on('data', onData);
  });
}

function reencode(frame: Frame): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE + frame.payload.length);
  buf[0] = frame.type;
  buf[1] = frame.flags;
  buf.writeUInt32BE(frame.streamId, 2);
  buf.writeUInt32BE(frame.payload.length, 6);
  frame.payload.copy(buf, FRAME_HEADER_SIZE);
  return buf;
}
