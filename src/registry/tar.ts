/**
 * Reading chosen files out of a tar stream (POSIX ustar, with GNU long names `L` and PAX `x`
 * path records), as image layers are: only the wanted files are kept in memory, the rest
 * streams past. Enough for `release-manifests/image-references` in a release image's layer.
 */

const BLOCK = 512;

export interface TarLimits {
  /** A wanted file larger than this is an error rather than a buffer of that size. */
  maxFileBytes: number;
}

/** Files whose normalised name (`./` and `/` prefixes cut) `wanted` accepts, by that name. */
export async function readTarFiles(source: AsyncIterable<Buffer>, wanted: (name: string) => boolean, limits: TarLimits = { maxFileBytes: 64 << 20 }): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  let pending: Buffer = Buffer.alloc(0);
  // The entry being read: its data bytes left, the padding after them, and whether it is kept.
  let left = 0;
  let padding = 0;
  let keep: { name: string; parts: Buffer[] } | undefined;
  let meta: { kind: 'longname' | 'pax'; parts: Buffer[] } | undefined;
  let nextName: string | undefined;
  let zeroBlocks = 0;

  const finishEntry = () => {
    if (keep) found.set(keep.name, Buffer.concat(keep.parts));
    if (meta) {
      const text = Buffer.concat(meta.parts);
      nextName = meta.kind === 'longname' ? text.toString('utf8').replace(/\0.*$/s, '') : (paxPath(text) ?? nextName);
    }
    keep = undefined;
    meta = undefined;
  };

  for await (const chunk of source) {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let pos = 0;
    for (;;) {
      if (left > 0) {
        const n = Math.min(left, pending.length - pos);
        if (n === 0) break;
        const piece = pending.subarray(pos, pos + n);
        keep?.parts.push(Buffer.from(piece));
        meta?.parts.push(Buffer.from(piece));
        left -= n;
        pos += n;
        if (left === 0) finishEntry();
        continue;
      }
      if (padding > 0) {
        const n = Math.min(padding, pending.length - pos);
        if (n === 0) break;
        padding -= n;
        pos += n;
        continue;
      }
      if (pending.length - pos < BLOCK) break;
      const header = pending.subarray(pos, pos + BLOCK);
      pos += BLOCK;
      if (header.every((b) => b === 0)) {
        if (++zeroBlocks === 2) return found;
        continue;
      }
      zeroBlocks = 0;
      const entry = parseHeader(header);
      const type = entry.type;
      const name = normalise(nextName ?? entry.name);
      if (type !== 'L' && type !== 'x' && type !== 'g') nextName = undefined;
      left = entry.size;
      padding = (BLOCK - (entry.size % BLOCK)) % BLOCK;
      if (type === 'L') meta = { kind: 'longname', parts: [] };
      else if (type === 'x') meta = { kind: 'pax', parts: [] };
      else if ((type === '0' || type === '\0' || type === '7') && wanted(name)) {
        if (entry.size > limits.maxFileBytes) throw new Error(`${name} in the layer is ${entry.size} bytes, over the ${limits.maxFileBytes}-byte limit`);
        keep = { name, parts: [] };
      }
      if (left === 0) finishEntry();
    }
    pending = pending.subarray(pos);
  }
  if (left > 0 || padding > 0 || pending.length > 0) throw new Error('the tar stream ended inside an entry');
  return found;
}

function parseHeader(h: Buffer): { name: string; size: number; type: string } {
  const text = (from: number, len: number) => h.subarray(from, from + len).toString('utf8').replace(/\0.*$/s, '');
  // Base-256 sizes (a set high bit; the value in the field's last 8 bytes) for files of 8 GiB and more.
  const size = (h[124] as number) & 0x80 ? Number(h.readBigUInt64BE(128)) : parseInt(text(124, 12).trim() || '0', 8);
  if (!Number.isFinite(size) || size < 0) throw new Error('a tar header with an invalid size');
  const checksum = parseInt(text(148, 8).trim(), 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number);
  if (checksum !== sum) throw new Error('a tar header with a wrong checksum: not a tar stream, or a damaged one');
  const magic = text(257, 6);
  const prefix = magic.startsWith('ustar') ? text(345, 155) : '';
  const name = text(0, 100);
  return { name: prefix ? `${prefix}/${name}` : name, size, type: String.fromCharCode(h[156] as number) };
}

/** The `path` record of a PAX extended header (`<len> path=<value>\n`), if any. */
function paxPath(records: Buffer): string | undefined {
  let pos = 0;
  let path: string | undefined;
  while (pos < records.length) {
    const space = records.indexOf(0x20, pos);
    if (space < 0) break;
    const len = Number(records.subarray(pos, space).toString('ascii'));
    if (!Number.isInteger(len) || len <= 0) break;
    const record = records.subarray(space + 1, pos + len - 1).toString('utf8');
    if (record.startsWith('path=')) path = record.slice(5);
    pos += len;
  }
  return path;
}

function normalise(name: string): string {
  return name.replace(/^(\.\/|\/)+/, '');
}
