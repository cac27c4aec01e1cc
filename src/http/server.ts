import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Listen } from '../config/config.js';
import type { ProtocolServer } from '../protocol.js';
import { bindError, PRIVILEGED_PORT_FIX } from '../net/bind-error.js';

export function createHttpServer(app: FastifyInstance, listen: Listen): ProtocolServer {
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
      stopping ??= app.close();
      return stopping;
    },
  };
}
