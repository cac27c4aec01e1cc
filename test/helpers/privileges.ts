/**
 * Tests that need root say so and are skipped, with the reason, in a developer's unprivileged
 * `npm test`; in CI (CI=true, run as root) nothing is skipped, so a missing privilege there is
 * the test's own loud failure, as with `netnsSkip` (netns.ts).
 */
import { createServer } from 'node:net';

const inCi = () => Boolean(process.env.CI);

/** Why a test needing root (for `what`) cannot run here, or false. */
export function rootSkip(what: string): string | false {
  if (process.getuid?.() === 0 || inCi()) return false;
  return `needs root (${what}); CI runs it as root`;
}

/**
 * Why a test binding `port` (below 1024) of a loopback address cannot run here, or false: it
 * tries the bind, so a user with CAP_NET_BIND_SERVICE or a lowered
 * net.ipv4.ip_unprivileged_port_start runs the test too.
 */
export async function lowPortSkip(port: number, what: string): Promise<string | false> {
  if (process.getuid?.() === 0 || inCi()) return false;
  const refused = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err));
    // An address of its own in 127.0.0.0/8, so a server already on 127.0.0.1:port is no answer.
    server.listen({ host: '127.83.41.9', port }, () => server.close(() => resolve(undefined)));
  });
  if (refused?.code !== 'EACCES') return false;
  return `needs root or CAP_NET_BIND_SERVICE, for port ${port} (${what}); CI runs it as root`;
}
