import { pino, type Logger } from 'pino';
import { redactJsonText } from './secrets/redact.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/**
 * pino JSON on stdout, one event a line. Secrets never reach it: known fields are censored by
 * path, and every finished line passes the redaction of src/secrets/redact.ts, so a secret in a
 * URL, an error message or a stack is cut whatever field or message carries it.
 */
export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'edgeboot' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', 'token', 'adminToken', 'adminTokens', 'password', 'pullSecret'],
        censor: '<redacted>',
      },
      hooks: { streamWrite: redactJsonText },
    },
    destination ?? process.stdout,
  );
}
