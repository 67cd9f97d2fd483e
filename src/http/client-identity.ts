// Who a request counts against for per-client limits (the /metrics and export rate limits,
// concurrent exports, failed API key attempts): the authenticated key when there is one, else the
// peer address. Read synchronously in the handler: the response's address is gone once the request
// is answered or aborted.
import type { HttpResponse } from 'uWebSockets.js';

const decoder = new TextDecoder();

export function clientIdentity(res: HttpResponse, keyId: string | null): string {
  if (keyId !== null) return `key:${keyId}`;
  return addressIdentity(res);
}

/** The peer as one client: its IPv4 address, or its IPv6 /64. */
export function addressIdentity(res: Pick<HttpResponse, 'getRemoteAddressAsText'>): string {
  return `ip:${normaliseAddress(decoder.decode(res.getRemoteAddressAsText()))}`;
}

/** An IPv4 address as it is; an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) as its IPv4 address;
 *  any other IPv6 address as its /64 (`2001:db8:0:0::/64`), because one host is routinely given a
 *  whole /64 and could otherwise rotate through 2^64 identities. uWS writes IPv6 in full
 *  (`0000:…:0001`); compressed forms, a dotted IPv4 tail and a zone id (`%eth0`) are accepted too.
 *  Text that is not an address comes back unchanged. Linear in the length of the text. */
export function normaliseAddress(text: string): string {
  if (!text.includes(':')) return text;
  const groups = ipv6Groups(text);
  if (groups === null) return text;
  const [a, b, c, d, e, f, g, h] = groups;
  if (a === 0 && b === 0 && c === 0 && d === 0 && e === 0 && f === 0xffff)
    return `${g! >> 8}.${g! & 0xff}.${h! >> 8}.${h! & 0xff}`;
  return `${a!.toString(16)}:${b!.toString(16)}:${c!.toString(16)}:${d!.toString(16)}::/64`;
}

/** The eight 16-bit groups of an IPv6 address in text, or null when it is not one. */
function ipv6Groups(text: string): number[] | null {
  const zone = text.indexOf('%');
  const address = zone >= 0 ? text.slice(0, zone) : text;
  if (address.length > 45) return null; // the longest form: six full groups and a dotted IPv4
  const gap = address.indexOf('::');
  if (gap >= 0 && address.indexOf('::', gap + 1) >= 0) return null;
  const head = gap >= 0 ? parseGroups(address.slice(0, gap)) : parseGroups(address);
  const tail = gap >= 0 ? parseGroups(address.slice(gap + 2)) : [];
  if (head === null || tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if (gap >= 0 ? missing < 1 : missing !== 0) return null;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}

/** Colon-separated hex groups; the last may be a dotted IPv4 address (two groups). */
function parseGroups(part: string): number[] | null {
  if (part === '') return [];
  const fields = part.split(':');
  const groups: number[] = [];
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    if (i === fields.length - 1 && field.includes('.')) {
      const octets = field.split('.');
      if (octets.length !== 4 || !octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255))
        return null;
      const [p, q, r, s] = octets.map(Number);
      groups.push((p! << 8) | q!, (r! << 8) | s!);
    } else if (/^[0-9a-fA-F]{1,4}$/.test(field)) {
      groups.push(parseInt(field, 16));
    } else return null;
  }
  return groups;
}
