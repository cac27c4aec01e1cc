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
      }
      addresses = app.addresses().filter((a): a is AddressInfo => typeof a !== 'string');
    },
    stop() {
      stopping ??= app.close();
      return stopping;
    },
  };
}
