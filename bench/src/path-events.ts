/**
 * The `path` events of `connect reach --json` ({type: 'path', name, mode: 'direct' | 'relay', via?, reason?}): which
 * path a reach's new streams take. The peer bench waits for the direct way's reach agents to go direct, and checks
 * that the relay ways never did and the direct way never fell back while it was measured.
 */

/** One path event of a reach. */
export interface PathEvent {
  name: string;
  mode: 'direct' | 'relay';
  via?: string;
  reason?: string;
}

/** The path events for service `name` among a process's output lines (JSON lines parsed, others as text), in order. */
export function pathEvents(lines: ReadonlyArray<Record<string, unknown> | string>, name: string): PathEvent[] {
  const out: PathEvent[] = [];
  for (const l of lines) {
    if (typeof l !== 'object' || l.type !== 'path' || l.name !== name || (l.mode !== 'direct' && l.mode !== 'relay')) continue;
    out.push({
      name,
      mode: l.mode,
      ...(typeof l.via === 'string' ? { via: l.via } : {}),
      ...(typeof l.reason === 'string' ? { reason: l.reason } : {}),
    });
  }
  return out;
}

/** "direct via 127.0.0.1:41641" / "relay: <reason>", for messages. */
export function describePath(e: PathEvent): string {
  return e.mode === 'direct' ? `direct${e.via ? ` via ${e.via}` : ''}` : `relay${e.reason ? `: ${e.reason}` : ''}`;
}

/**
 * What the path events of the reach of service `name` say went wrong for its way: with `wantDirect` false (a relay way), any direct
 * path; with `wantDirect` true, a move back to the relay after the first direct path (its streams were measured on
 * both paths), or no direct path at all.
 */
export function pathProblems(name: string, events: PathEvent[], wantDirect: boolean): string[] {
  if (!wantDirect) {
    const direct = events.filter((e) => e.mode === 'direct');
    return direct.length > 0 ? [`${name} went ${describePath(direct[0]!)} although direct paths were off`] : [];
  }
  const first = events.findIndex((e) => e.mode === 'direct');
  if (first < 0) return [`${name} never went direct${events.length > 0 ? ` (last: ${describePath(events.at(-1)!)})` : ''}`];
  const back = events.slice(first + 1).filter((e) => e.mode === 'relay');
  return back.length > 0 ? [`${name} fell back to the relay ${back.length} time(s) while measured (first: ${describePath(back[0]!)})`] : [];
}
