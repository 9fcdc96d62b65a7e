/** Node's codes of a network failure on the way to the server (or to any other). */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * Messages of node-postgres for a connection it could not get or lost: pg-pool's wait for a free connection
 * (`connectionTimeoutMillis`) running out, and a connection closed under a query.
 */
const CONNECTION_MESSAGES = ['timeout exceeded when trying to connect', 'Connection terminated'];

/**
 * SQLSTATEs that say "not now" rather than "not this query": 08 connection exception, 53 insufficient resources
 * (53300 too many connections), 57014 statement timeout or cancel, 57P01-57P03 shutdown and cannot connect now.
 */
const UNAVAILABLE_SQLSTATE = /^(08|53)|^57014$|^57P0[1-3]$/;

/**
 * Whether a Postgres call failed because Postgres could not serve it now (down, unreachable, every pooled connection
 * busy past `connectionTimeoutMillis`, too many connections, a statement timeout) rather than because of the query:
 * the caller may answer "unavailable, retry later" (503) instead of an internal error.
 */
export function isPostgresUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (NETWORK_ERROR_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code))) return true;
  return CONNECTION_MESSAGES.some((message) => error.message.startsWith(message));
}
