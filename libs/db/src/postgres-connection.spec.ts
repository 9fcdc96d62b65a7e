import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { postgresConnection } from './postgres-connection.js';

const dir = mkdtempSync(join(tmpdir(), 'wb-pgconn-'));
const ca = join(dir, 'ca.pem');
writeFileSync(ca, 'CA-PEM');
const otherCa = join(dir, 'other.pem');
writeFileSync(otherCa, 'OTHER-PEM');

/** A certificate for `name` only, as node:tls hands it to checkServerIdentity. */
const certFor = (name: string) =>
  ({ subject: { CN: name }, subjectaltname: `DNS:${name}` }) as unknown as PeerCertificate;

describe('postgresConnection', () => {
  it('is plaintext without sslmode or CA, and keeps the rest of the URL', () => {
    const c = postgresConnection('postgres://u:p%40ss@db.internal:5433/app?application_name=x');
    expect(c.ssl).toBe(false);
    expect(c.connectionString).toBe('postgres://u:p%40ss@db.internal:5433/app?application_name=x');
    expect(postgresConnection('postgres://h/db?sslmode=disable').ssl).toBe(false);
  });

  it('takes the TLS parameters away from node-postgres', () => {
    const c = postgresConnection(`postgres://h/db?sslmode=verify-full&sslrootcert=${ca}&application_name=x`);
    expect(c.connectionString).toBe('postgres://h/db?application_name=x');
  });

  it('require: encrypts without verifying; with a root certificate it verifies the chain only', () => {
    expect(postgresConnection('postgres://h/db?sslmode=require').ssl).toEqual({ rejectUnauthorized: false });
    const withCa = postgresConnection(`postgres://h/db?sslmode=require&sslrootcert=${ca}`).ssl;
    expect(withCa && withCa.ca).toBe('CA-PEM');
    expect(withCa && withCa.rejectUnauthorized).not.toBe(false);
    expect(withCa && withCa.checkServerIdentity?.('h', certFor('elsewhere'))).toBeUndefined();
  });

  it('verify-ca: verifies the chain, not the name', () => {
    const ssl = postgresConnection(`postgres://h/db?sslmode=verify-ca&sslrootcert=${ca}`).ssl;
    expect(ssl && ssl.ca).toBe('CA-PEM');
    expect(ssl && ssl.checkServerIdentity?.('h', certFor('elsewhere'))).toBeUndefined();
  });

  it("verify-full: verifies the chain and the URL's host name", () => {
    const ssl = postgresConnection(`postgres://db.internal/app?sslmode=verify-full&sslrootcert=${ca}`).ssl;
    expect(ssl && ssl.ca).toBe('CA-PEM');
    expect(ssl && ssl.rejectUnauthorized).toBe(true);
    expect(ssl && ssl.checkServerIdentity?.('ignored', certFor('db.internal'))).toBeUndefined();
    expect(ssl && ssl.checkServerIdentity?.('ignored', certFor('other.internal'))).toBeInstanceOf(Error);
    // No root certificate: Node's trusted CAs.
    const system = postgresConnection('postgres://db.internal/app?sslmode=verify-full').ssl;
    expect(system && 'ca' in system).toBe(false);
  });

  it('DATABASE_SSL_CA_FILE alone means verify-full, and wins over sslrootcert', () => {
    const alone = postgresConnection('postgres://h/db', ca).ssl;
    expect(alone && alone.ca).toBe('CA-PEM');
    expect(alone && alone.checkServerIdentity?.('h', certFor('elsewhere'))).toBeInstanceOf(Error);
    const both = postgresConnection(`postgres://h/db?sslmode=verify-full&sslrootcert=${otherCa}`, ca).ssl;
    expect(both && both.ca).toBe('CA-PEM');
  });

  it('fails at once when a certificate file is missing', () => {
    expect(() => postgresConnection(`postgres://h/db?sslmode=verify-full&sslrootcert=${join(dir, 'nope')}`)).toThrow(
      /ENOENT/,
    );
  });
});
