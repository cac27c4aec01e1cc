/** Seeded mutation of DHCP packets, shared by the codec fuzz and the server fuzz. */
/** mulberry32: a small, fast, seedable PRNG. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  return {
    /** 0 ≤ n < below */
    int: (below: number) => Math.floor(next() * below),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T,
    bytes: (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256))),
  };
}

/** Where the TLVs of an options area start and how long they are, as far as they parse. */
function tlvs(b: Buffer, start: number, end: number): { at: number; size: number }[] {
  const out: { at: number; size: number }[] = [];
  let i = start;
  while (i < end) {
    const code = b[i] as number;
    if (code === 0 || code === 255) {
      out.push({ at: i, size: 1 });
      if (code === 255) break;
      i++;
      continue;
    }
    if (i + 1 >= end) break;
    const size = 2 + (b[i + 1] as number);
    if (i + size > end) break;
    out.push({ at: i, size });
    i += size;
  }
  return out;
}

const INTERESTING = [0, 1, 2, 3, 4, 16, 17, 52, 53, 0x7f, 0x80, 0xfe, 0xff];

export type Rng = ReturnType<typeof prng>;

/** One mutation of `b` (a fresh buffer; `b` is not modified). */
export function mutate(r: Rng, b: Buffer): Buffer {
  const area = (): { start: number; end: number } => {
    const which = r.int(4);
    if (which === 0) return { start: 108, end: Math.min(236, b.length) };
    if (which === 1) return { start: 44, end: Math.min(108, b.length) };
    return { start: 240, end: b.length };
  };
  const anyTlv = () => {
    const { start, end } = area();
    return tlvs(b, start, end);
  };
  /** A position, half the time in the cookie and options. */
  const pos = () => (r.int(2) === 0 && b.length > 236 ? 236 + r.int(b.length - 236) : r.int(Math.max(b.length, 1)));
  switch (r.int(11)) {
    case 0: {
      // Bit flips.
      const m = Buffer.from(b);
      for (let k = 1 + r.int(3); k > 0 && m.length > 0; k--) {
        const at = pos();
        m[at] = (m[at] as number) ^ (1 << r.int(8));
      }
      return m;
    }
    case 1: {
      // Byte sets.
      const m = Buffer.from(b);
      for (let k = 1 + r.int(3); k > 0 && m.length > 0; k--) m[pos()] = r.int(2) ? r.pick(INTERESTING) : r.int(256);
      return m;
    }
    case 2: {
      // Truncation, mostly within the options.
      const keep = r.int(4) === 0 ? r.int(b.length + 1) : Math.min(b.length, 236 + r.int(Math.max(b.length - 235, 1)));
      return Buffer.from(b.subarray(0, keep));
    }
    case 3:
      // Extension with random bytes.
      return Buffer.concat([b, r.bytes(1 + r.int(64))]);
    case 4: {
      // A TLV duplicated (next to itself or elsewhere).
      const list = anyTlv();
      const src = list.length ? r.pick(list) : undefined;
      if (!src) return Buffer.concat([b, r.bytes(2)]);
      const at = r.int(2) ? src.at + src.size : r.pick(list).at;
      return Buffer.concat([b.subarray(0, at), b.subarray(src.at, src.at + src.size), b.subarray(at)]);
    }
    case 5: {
      // A TLV removed (in file or sname: replaced by zeros to keep the field size).
      const { start, end } = area();
      const list = tlvs(b, start, end);
      const x = list.length ? r.pick(list) : undefined;
      if (!x) return Buffer.from(b);
      if (start === 240) return Buffer.concat([b.subarray(0, x.at), b.subarray(x.at + x.size)]);
      const m = Buffer.from(b);
      m.copy(m, x.at, x.at + x.size, end);
      m.fill(0, end - x.size, end);
      return m;
    }
    case 6: {
      // A random length byte.
      const m = Buffer.from(b);
      const list = anyTlv().filter((x) => x.size > 1);
      const x = list.length ? r.pick(list) : undefined;
      if (x) m[x.at + 1] = r.int(2) ? r.int(256) : Math.max(0, x.size - 2 + r.int(5) - 2);
      return m;
    }
    case 7: {
      // Option 52 inserted with any value, in the options field or in file.
      const list = anyTlv();
      const at = list.length ? r.pick(list).at : Math.min(240, b.length);
      const o52 = Buffer.from([52, r.int(8) === 0 ? r.int(3) : 1, r.pick([0, 1, 2, 3, 3, 3, 4, 255])]);
      if (at < 236) {
        const m = Buffer.from(b);
        o52.copy(m, at);
        return m;
      }
      return Buffer.concat([b.subarray(0, at), o52, b.subarray(at)]);
    }
    case 8: {
      // hlen.
      const m = Buffer.from(b);
      if (m.length > 2) m[2] = r.int(2) ? r.int(20) : r.int(256);
      return m;
    }
    case 9: {
      // A random TLV (code, length, data that may or may not match) at a boundary.
      const list = anyTlv();
      const at = list.length ? r.pick(list).at : Math.min(240, b.length);
      const len = r.int(40);
      const tlv = Buffer.concat([Buffer.from([r.int(256), r.int(4) === 0 ? r.int(256) : len]), r.bytes(len)]);
      if (at < 236) {
        const m = Buffer.from(b);
        tlv.copy(m, at, 0, Math.min(tlv.length, 236 - at));
        return m;
      }
      return Buffer.concat([b.subarray(0, at), tlv, b.subarray(at)]);
    }
    default: {
      // END removed or moved.
      const m = Buffer.from(b);
      const end = tlvs(m, 240, m.length).find((x) => m[x.at] === 255);
      if (!end) return Buffer.concat([m, Buffer.from([255])]);
      return r.int(2)
        ? Buffer.concat([m.subarray(0, end.at), m.subarray(end.at + 1)])
        : Buffer.concat([m.subarray(0, end.at), r.bytes(r.int(8)), m.subarray(end.at)]);
    }
  }
}
