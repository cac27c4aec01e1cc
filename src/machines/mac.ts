/** A MAC address in the one form edgeboot stores and compares: `aa:bb:cc:dd:ee:ff`. */
export type Mac = string & { readonly __brand: 'Mac' };

const HEX12 = /^[0-9a-f]{12}$/;

/**
 * Accepts `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff`, `aabbccddeeff` (iPXE's `:hex`, `:hexhyp`
 * and `:hexraw` formats), in any case. Mixed separators are refused: they are typos.
 */
export function parseMac(input: string): Mac | undefined {
  const s = input.trim().toLowerCase();
  let hex: string;
  if (s.length === 17) {
    const sep = s[2];
    if (sep !== ':' && sep !== '-') return undefined;
    for (let i = 2; i < 17; i += 3) if (s[i] !== sep) return undefined;
    hex = s.split(sep).join('');
  } else if (s.length === 12) {
    hex = s;
  } else {
    return undefined;
  }
  if (!HEX12.test(hex)) return undefined;
  return hex.replace(/(..)(?!$)/g, '$1:') as Mac;
}

/**
 * Why a well-formed MAC cannot be a machine's NIC, or undefined when it can. The all-zero
 * address is no station's, and a group address (the I/G bit, the low bit of the first octet:
 * IEEE 802-2014 §8.2; broadcast is one) names many stations, never one.
 */
export function macRefusal(mac: Mac): string | undefined {
  if (mac === '00:00:00:00:00:00') return `${mac} is the all-zero MAC, which no network card has`;
  if (mac === 'ff:ff:ff:ff:ff:ff') return `${mac} is the broadcast MAC, which names every station, not one machine`;
  if ((Number.parseInt(mac.slice(0, 2), 16) & 1) === 1)
    return `${mac} is a multicast MAC (the low bit of its first octet is set), which names a group, not one machine`;
  return undefined;
}

/** A MAC a machine can have: well-formed (parseMac) and unicast (macRefusal), or why not. */
export function parseUnicastMac(input: string): { ok: true; mac: Mac } | { ok: false; reason: string } {
  const mac = parseMac(input);
  if (mac === undefined) return { ok: false, reason: `${JSON.stringify(input)} is not a MAC address (aa:bb:cc:dd:ee:ff, aa-bb-… or aabb…)` };
  const refusal = macRefusal(mac);
  return refusal === undefined ? { ok: true, mac } : { ok: false, reason: refusal };
}

/** `aa-bb-cc-dd-ee-ff`: the form iPXE's `:hexhyp` prints, safe in a URL path and query. */
export function macHyphenated(mac: Mac): string {
  return mac.replaceAll(':', '-');
}

/** A SMBIOS UUID, lower case with hyphens, as iPXE prints `${uuid}`. */
export type Uuid = string & { readonly __brand: 'Uuid' };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function parseUuid(input: string): Uuid | undefined {
  const s = input.trim().toLowerCase();
  return UUID.test(s) ? (s as Uuid) : undefined;
}
