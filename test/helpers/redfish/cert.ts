/** A self-signed certificate for the HTTPS emulator, made by the openssl CLI (Node makes keys, not certificates). */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function selfSignedCert(dir: string, cn: string, ip?: string): Promise<{ key: string; cert: string; keyFile: string; certFile: string }> {
  const keyFile = join(dir, `${cn}-key.pem`);
  const certFile = join(dir, `${cn}-cert.pem`);
  const san = [`DNS:${cn}`, ...(ip === undefined ? [] : [`IP:${ip}`])].join(',');
  // EC P-256, valid two days: enough for a test run, and the SAN is what clients check (not the CN).
  const fixed = 'req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2'.split(' ');
  await run('openssl', [...fixed, '-keyout', keyFile, '-out', certFile, '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${san}`]);
  return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), keyFile, certFile };
}
