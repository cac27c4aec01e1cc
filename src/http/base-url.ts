import type { FastifyRequest } from 'fastify';

const HOST_HEADER = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$/;

/**
 * The URL machines reach this server at: the configured advertise address, else the Host the
 * request was sent to (checked: it ends up in iPXE scripts), else the socket's own address.
 */
export function baseUrlOf(req: FastifyRequest, advertise: string, port: number): string {
  // Port 0 (bind any free port) names no port: the one this request came in on is the real one.
  const advertisedPort = port === 0 ? (req.socket.localPort ?? port) : port;
  if (advertise !== 'auto') return `http://${advertise.includes(':') ? `[${advertise}]` : advertise}:${advertisedPort}`;
  const host = req.headers.host;
  if (host && HOST_HEADER.test(host)) return `http://${host}`;
  const local = req.socket.localAddress ?? '127.0.0.1';
  const addr = local.startsWith('::ffff:') ? local.slice(7) : local;
  return `http://${addr.includes(':') ? `[${addr}]` : addr}:${req.socket.localPort ?? port}`;
}
