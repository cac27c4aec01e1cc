import type { Mac } from '../machines/mac.js';
import type { NewEvent } from '../machines/model.js';
import type { TransferRecord } from './server.js';

/**
 * The timeline event of a TFTP transfer of the machine with that MAC; none for size probes and
 * transfers the server stopped, nor when no lease or neighbour entry named the client.
 */
export function transferEvent(r: TransferRecord, mac: Mac | undefined): { mac: Mac; event: NewEvent } | undefined {
  if (!mac || r.outcome === 'probe' || r.outcome === 'stopped') return undefined;
  const data = {
    mac,
    file: r.file,
    outcome: r.outcome,
    bytes: r.bytes,
    size: r.size,
    durationMs: Math.round(r.durationMs),
    client: r.client.address,
    server: r.local,
    blksize: r.blksize,
    windowsize: r.windowsize,
    resent: r.resent,
    options: r.requested,
  };
  return { mac, event: { type: r.outcome === 'complete' ? 'tftp-transfer' : 'tftp-failed', source: 'tftp', ...(r.error && { message: r.error }), data } };
}
