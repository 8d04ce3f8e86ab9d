/** Ids: every id the hub hands out (agents, services, keys, shares, links, invitations, users) is a UUID. */

/** A UUID in either case, as a JSON Schema `pattern` (the API's schemas use it) and as the source of `isUuid`. */
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

const UUID = new RegExp(UUID_PATTERN);

/** Whether `value` is a UUID: ids are checked with this before they reach a query (a uuid column refuses the rest). */
export function isUuid(value: unknown): boolean {
  return typeof value === 'string' && UUID.test(value);
}
