import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Listen } from '../config/config.js';
import type { ProtocolServer } from '../protocol.js';

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
        if (e.code === 'EADDRINUSE') throw new Error(`HTTP: ${listen.host}:${listen.port} is already in use; set http.listen (EDGEBOOT_HTTP_LISTEN) to a free address`);
        if (e.code === 'EACCES') throw new Error(`HTTP: binding port ${listen.port} needs root or CAP_NET_BIND_SERVICE; use a port above 1023 or grant the capability`);
        throw err;
      }
      addresses = app.addresses().filter((a): a is AddressInfo => typeof a !== 'string');
    },
    stop() {
      stopping ??= app.close();
      return stopping;
    },
  };
}
