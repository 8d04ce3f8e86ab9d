/** The one wording of the "your agent token expires soon" warning, shared by `connect up`, `status`, expose and reach. */

/** The warning for a token that stops working at `expiresAt`, `expiresInMs` from now by the hub's clock. */
export function tokenExpiryWarning(expiresAt: string, expiresInMs: number): string {
  const days = Math.max(0, Math.floor(expiresInMs / 86_400_000));
  const when = days === 0 ? 'within a day' : `in ${days} day${days === 1 ? '' : 's'}`;
  return `the agent token expires ${when} (${expiresAt.slice(0, 16).replace('T', ' ')} UTC); rotate it now with: connect up --rotate-token`;
}
