import { rmSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onProcessExit, runCommand } from './service-process.js';

/** A server certificate and its key, PEM files. */
export interface ServerCertificate {
  cert: string;
  key: string;
}

/**
 * A throwaway certificate authority for the secured-infrastructure tests, made with the openssl CLI: a CA, server
 * certificates it signs (SAN IP:127.0.0.1 and DNS:localhost by default, what the private servers listen on), and a
 * second, unrelated CA to prove that a client refuses a server it was not told to trust. Files live in a temp dir,
 * removed by dispose() or when the test process exits.
 */
export class TestCertificates {
  /** The CA certificate (PEM): what clients are given as their trusted root. */
  readonly ca: string;
  /** Another CA's certificate, which signed nothing the servers present. */
  readonly otherCa: string;
  private readonly forgetDir: () => void;
  private serial = 0;

  private constructor(readonly dir: string) {
    this.ca = join(dir, 'ca.pem');
    this.otherCa = join(dir, 'other-ca.pem');
    this.forgetDir = onProcessExit(() => rmSync(dir, { recursive: true, force: true }));
  }

  static async create(): Promise<TestCertificates> {
    const certificates = new TestCertificates(await mkdtemp(join(tmpdir(), 'wb-certs-')));
    try {
      await certificates.selfSigned('ca', 'writebehind test CA');
      await certificates.selfSigned('other-ca', 'writebehind unrelated CA');
    } catch (error) {
      await certificates.dispose();
      throw error;
    }
    return certificates;
  }

  /**
   * A server certificate signed by the CA, for `names` (IP addresses and DNS names; default 127.0.0.1 and
   * localhost). The key is unencrypted PKCS#8, readable by its owner only (Postgres insists).
   */
  async server(name: string, names: string[] = ['127.0.0.1', 'localhost']): Promise<ServerCertificate> {
    const key = join(this.dir, `${name}.key`);
    const csr = join(this.dir, `${name}.csr`);
    const cert = join(this.dir, `${name}.pem`);
    const ext = join(this.dir, `${name}.ext`);
    const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
    await writeFile(
      ext,
      [
        `subjectAltName=${san}`,
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth',
        '',
      ].join('\n'),
    );
    await runCommand('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
    await chmod(key, 0o600);
    await runCommand('openssl', ['req', '-new', '-key', key, '-subj', `/CN=${names[0] ?? name}`, '-out', csr]);
    await runCommand('openssl', [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      this.ca,
      '-CAkey',
      join(this.dir, 'ca.key'),
      '-set_serial',
      String(++this.serial + 1000),
      '-days',
      '2',
      '-sha256',
      '-extfile',
      ext,
      '-out',
      cert,
    ]);
    return { cert, key };
  }

  async dispose(): Promise<void> {
    this.forgetDir();
    await rm(this.dir, { recursive: true, force: true });
  }

  private async selfSigned(name: string, subject: string): Promise<void> {
    const key = join(this.dir, `${name}.key`);
    await runCommand('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
    await runCommand('openssl', [
      'req',
      '-x509',
      '-new',
      '-key',
      key,
      '-subj',
      `/CN=${subject}`,
      '-days',
      '2',
      '-sha256',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      join(this.dir, `${name}.pem`),
    ]);
  }
}
