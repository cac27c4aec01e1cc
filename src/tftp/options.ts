/**
 * Option negotiation for a read request (RFC 2347 §2): each option the server understands and
 * accepts goes into the OACK with the value it will use; anything else is left out, which the
 * client reads as "not accepted". With nothing accepted there is no OACK and the transfer is
 * plain RFC 1350 (512-byte blocks, lock-step).
 */
export const RFC1350_BLKSIZE = 512;
/** RFC 2348 §2: the valid block sizes. */
export const BLKSIZE_MIN = 8;
export const BLKSIZE_MAX = 65464;
/** RFC 7440 §3: the valid window sizes. */
export const WINDOWSIZE_MAX = 65535;
/** RFC 2349 §2: the valid timeouts, in seconds. */
export const TIMEOUT_MIN_SECONDS = 1;
export const TIMEOUT_MAX_SECONDS = 255;

export interface TftpLimits {
  /** The largest block size granted; a larger request is answered with this (RFC 2348 §2). */
  maxBlksize: number;
  /** The largest window size granted; a larger request is answered with this (RFC 7440 §3). */
  maxWindowsize: number;
  /** Retransmission timeout when the client names none. */
  timeoutMs: number;
}

export interface Negotiated {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** The client named the timeout (RFC 2349): use it as is, without backing off. */
  clientTimeout: boolean;
  /** The OACK to send, in the client's order; undefined when no option was accepted. */
  oack: [string, string][] | undefined;
  /** The client asked for the size (a request that ends in an abort after the OACK is a probe). */
  tsizeAsked: boolean;
}

const DECIMAL = /^[0-9]{1,10}$/;

function integer(value: string, min: number, max: number): number | undefined {
  if (!DECIMAL.test(value)) return undefined;
  const n = Number(value);
  return n >= min && n <= max ? n : undefined;
}

/**
 * `size` is the length of what will be sent, or undefined when it is not known in advance
 * (then `tsize` is not acknowledged, RFC 2349 §4 lets the server leave it out).
 */
export function negotiate(requested: ReadonlyMap<string, string>, limits: TftpLimits, size: number | undefined): Negotiated {
  const out: Negotiated = {
    blksize: RFC1350_BLKSIZE,
    windowsize: 1,
    timeoutMs: limits.timeoutMs,
    clientTimeout: false,
    oack: undefined,
    tsizeAsked: false,
  };
  const oack: [string, string][] = [];
  for (const [name, value] of requested) {
    switch (name) {
      case 'blksize': {
        const n = integer(value, BLKSIZE_MIN, Number.MAX_SAFE_INTEGER);
        if (n === undefined) break;
        // RFC 2348 §2: values above 65464 are clamped like any value above the server's limit.
        out.blksize = Math.min(n, BLKSIZE_MAX, limits.maxBlksize);
        oack.push(['blksize', String(out.blksize)]);
        break;
      }
      case 'windowsize': {
        const n = integer(value, 1, WINDOWSIZE_MAX);
        if (n === undefined) break;
        out.windowsize = Math.min(n, limits.maxWindowsize);
        oack.push(['windowsize', String(out.windowsize)]);
        break;
      }
      case 'timeout': {
        // RFC 2349 §3: the server may not answer another value; it accepts it or leaves it out.
        const n = integer(value, TIMEOUT_MIN_SECONDS, TIMEOUT_MAX_SECONDS);
        if (n === undefined) break;
        out.timeoutMs = n * 1000;
        out.clientTimeout = true;
        oack.push(['timeout', String(n)]);
        break;
      }
      case 'tsize': {
        // RFC 2349 §4: a read request carries 0; the OACK carries the size.
        out.tsizeAsked = true;
        if (size !== undefined && integer(value, 0, Number.MAX_SAFE_INTEGER) !== undefined) oack.push(['tsize', String(size)]);
        break;
      }
      default:
        break;
    }
  }
  if (oack.length > 0) out.oack = oack;
  return out;
}
