import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** Tokens from config, else the one in `<dataDir>/admin-token`, made at first start (0600). */
export function adminTokens(config: { auth: { adminTokens: readonly string[] }; server: { dataDir: string } }): { tokens: string[]; file?: string } {
  if (config.auth.adminTokens.length > 0) return { tokens: [...config.auth.adminTokens] };
  const file = resolve(config.server.dataDir, 'admin-token');
  if (!existsSync(file)) {
    mkdirSync(config.server.dataDir, { recursive: true });
    writeFileSync(file, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  }
  chmodSync(file, 0o600);
  const token = readFileSync(file, 'utf8').trim();
  if (token.length < 16) throw new Error(`${file} holds no usable token (16 characters at least); delete it to have a new one made`);
  return { tokens: [token], file };
}
