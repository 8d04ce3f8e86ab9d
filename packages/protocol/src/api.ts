/** Shapes of the hub's REST answers that the hub writes and the SDK reads (one definition for both sides). */

/** An API key as GET /v1/api-keys lists it: the prefix only, never the key or its hash. */
export interface ApiKeyInfo {
  id: string;
  name: string;
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** One entry of GET /v1/audit. */
export interface AuditEntry {
  id: string;
  at: string;
  actorType: string;
  actorId: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  /** Whole, unlike in logs: the audit log is where addresses are kept. */
  ip: string | null;
  userAgent: string | null;
  metadata: Record<string, unknown>;
}
