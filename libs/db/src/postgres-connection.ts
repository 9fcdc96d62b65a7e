import { readFileSync } from 'node:fs';
import { checkServerIdentity } from 'node:tls';

/** The TLS parameters of a connection string that this module interprets (and takes away from node-postgres). */
const TLS_PARAMS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'ssl'] as const;

/** The TLS options used here: a subset that node-postgres, pg-promise and node:tls all type alike. */
export interface PostgresTlsOptions {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized?: boolean;
  checkServerIdentity?: typeof checkServerIdentity;
}

export interface PostgresConnection {
  /** DATABASE_URL without its TLS parameters. */
  connectionString: string;
  /** node-postgres' `ssl`: false for a plaintext connection. */
  ssl: false | PostgresTlsOptions;
}

/**
 * The node-postgres connection settings of DATABASE_URL (and DATABASE_SSL_CA_FILE), with libpq's meaning of
 * `sslmode`, for the pool and the migrations alike:
 *
 * - `disable` (or no sslmode and no CA): plaintext.
 * - `require`: TLS without verifying the certificate (encryption only); with a root certificate, as `verify-ca`.
 * - `verify-ca`: TLS; the certificate must chain to the root certificate. Its name is not checked.
 * - `verify-full` (the default when only a CA file is given): TLS; the certificate must chain to the root
 *   certificate (Node's trusted CAs when none is given) and name the host of DATABASE_URL (DNS or IP SAN).
 *
 * node-postgres 8 reads these parameters itself, differently: it treats `require` and `verify-ca` as `verify-full`
 * (with a deprecation warning), and checks the name only through Node's default for the host it connected to.
 * So the parameters are taken out of the string it sees and the result is spelled out in `ssl`, including the
 * host-name check. `sslrootcert` and the CA file are read now: a missing file fails at boot, not at first use.
 */
export function postgresConnection(url: string, sslCaFile?: string): PostgresConnection {
  const parsed = new URL(url);
  const params = parsed.searchParams;
  const legacySsl = params.get('ssl');
  const mode =
    params.get('sslmode') ??
    (sslCaFile !== undefined || legacySsl === 'true' || legacySsl === '1' ? 'verify-full' : 'disable');
  const rootCertFile = sslCaFile ?? params.get('sslrootcert') ?? undefined;
  const certFile = params.get('sslcert');
  const keyFile = params.get('sslkey');
  for (const name of TLS_PARAMS) params.delete(name);
  const connectionString = parsed.toString();
  if (mode === 'disable') return { connectionString, ssl: false };

  const ca = rootCertFile === undefined ? undefined : readFileSync(rootCertFile, 'utf8');
  const clientCertificate = {
    ...(certFile ? { cert: readFileSync(certFile, 'utf8') } : {}),
    ...(keyFile ? { key: readFileSync(keyFile, 'utf8') } : {}),
  };
  // The host as written in the URL, without IPv6 brackets: what the certificate must name.
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  switch (mode) {
    case 'require':
      return ca === undefined
        ? { connectionString, ssl: { ...clientCertificate, rejectUnauthorized: false } }
        : { connectionString, ssl: { ...clientCertificate, ca, checkServerIdentity: () => undefined } };
    case 'verify-ca':
      return { connectionString, ssl: { ...clientCertificate, ca, checkServerIdentity: () => undefined } };
    case 'verify-full':
      return {
        connectionString,
        ssl: {
          ...clientCertificate,
          ...(ca === undefined ? {} : { ca }),
          rejectUnauthorized: true,
          checkServerIdentity: (_servername, certificate) => checkServerIdentity(host, certificate),
        },
      };
    default:
      // The config schema admits only the modes above.
      throw new Error(`unsupported sslmode in DATABASE_URL: ${mode}`);
  }
}
