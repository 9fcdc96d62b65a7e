/** What replaces a secret in a log line. */
export const SCRUBBED = '[REDACTED]';

/**
 * Secrets shorter than this are not scrubbed: replacing every occurrence of a two-letter string would garble every
 * line, and such a password protects nothing anyway. docs/security.md says so.
 */
export const MIN_SCRUBBED_LENGTH = 4;

/**
 * Removes known secret values (passwords, API keys: AppConfig.secrets) from serialized log lines. The logger's
 * redact paths cover the places a secret is expected (request headers); this covers the places nobody foresaw: a
 * client library that puts a connection string or the arguments of AUTH into an error it throws. Each secret is
 * looked for as written, as JSON escapes it and as a URL encodes it, since a line is JSON and may quote a URL.
 */
export function secretScrubber(secrets: readonly string[]): (line: string) => string {
  const needles = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SCRUBBED_LENGTH) continue;
    needles.add(secret);
    needles.add(JSON.stringify(secret).slice(1, -1));
    needles.add(encodeURIComponent(secret));
  }
  // Longest first, so that a secret containing another is replaced whole.
  const ordered = [...needles].sort((a, b) => b.length - a.length);
  if (ordered.length === 0) return (line) => line;
  return (line) => {
    let out = line;
    for (const needle of ordered) if (out.includes(needle)) out = out.replaceAll(needle, SCRUBBED);
    return out;
  };
}
