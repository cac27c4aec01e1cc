import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Listen } from '../config/config.js';
import { STOP_GRACE_MS, type ProtocolServer } from '../protocol.js';
import { bindError, PRIVILEGED_PORT_FIX } from '../net/bind-error.js';

/**
 * Fastify on `listen`, keeping the stop contract of src/protocol.ts: close() stops accepting and
 * closes idle keep-alive connections; requests in flight get `stopGraceMs` to finish (each
 * connection closed as its response ends), then every connection left is destroyed.
 */
export function createHttpServer(app: FastifyInstance, listen: Listen, stopGraceMs = STOP_GRACE_MS): ProtocolServer {
  let addresses: AddressInfo[] = [];
  let stopping: Promise<void> | undefined;
  return {
    name: 'http',
    get addresses() {
      return addresses;
    },
    async start() {
      // Fastify logs "Server listening at http://127.0.0.1:8080" (one line per interface address
      // when bound to 0.0.0.0), which reads as if loopback alone were bound, and has no option to
      // leave it out (fastify/help#641): its logger is silent while it binds, and edgeboot's
      // start-up lines say what is bound (describeStart).
      const level = app.log.level;
      app.log.level = 'silent';
      try {
        await app.listen({ host: listen.host, port: listen.port });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code !== 'EADDRINUSE' && e.code !== 'EACCES' && e.code !== 'EADDRNOTAVAIL') throw err;
        throw bindError('HTTP', `TCP ${listen.host}:${listen.port}`, e, {
          holder: 'another server',
          inUseFix: 'set http.listen (EDGEBOOT_HTTP_LISTEN) to a free address',
          accessFix: `${PRIVILEGED_PORT_FIX}; or set http.listen to a port above 1023`,
        });
      } finally {
        app.log.level = level;
      }
      addresses = app.addresses().filter((a): a is AddressInfo => typeof a !== 'string');
    },
    stop() {
      stopping ??= (async () => {
        const cutOff = setTimeout(() => app.server.closeAllConnections(), stopGraceMs);
        // A keep-alive connection whose response ends after close() began stays open until its
        // keep-alive timeout (72 s in Fastify): close each one as it turns idle.
        const idle = setInterval(() => app.server.closeIdleConnections(), 50);
        try {
          await app.close();
        } finally {
          clearTimeout(cutOff);
          clearInterval(idle);
        }
      })();
      return stopping;
    },
  };
}
