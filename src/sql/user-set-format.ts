// The stored form of a rollup cell's users (the users column of rollup_cells and
// rollup_hour_cells), and the bit operations that build and read it.
// Sets of users as bitmaps over user_ids.user_int: bit i (byte i >> 3, bit i & 7) ⇔ user i.
// Why bitmaps: unique users must be exact over any day range, and daily distinct counts do not add
// up. A union of one bitmap per day is an OR plus a popcount: at 100k users a day's bitmap is
// 12.5 KB, so a 90-day window reads ~1.1 MB and merges in a few milliseconds, where a
// count(DISTINCT user_id) over the raw rows reads every event in the window (12 s at 10M events).
// Buffers this module allocates are 8-byte aligned and padded, so the OR and the popcount run on
// 32-bit words; bitmaps from the database (slices of a network buffer) are merged bytewise.

export function bitmapWith(base: Uint8Array | null, userInts: Iterable<number>): Uint8Array {
  let bitmap = base ?? new Uint8Array(0);
  for (const i of userInts) {
    const byte = i >>> 3;
    if (byte >= bitmap.length) bitmap = grow(bitmap, byte + 1);
    bitmap[byte]! |= 1 << (i & 7);
  }
  return bitmap;
}

/** target |= source; returns target, grown when source is longer. */
export function orInto(target: Uint8Array, source: Uint8Array): Uint8Array {
  const out = source.length > target.length ? grow(target, source.length) : target;
  let i = 0;
  if (out.byteOffset % 4 === 0 && source.byteOffset % 4 === 0) {
    const words = source.length >>> 2;
    const to = new Uint32Array(out.buffer, out.byteOffset, words);
    const from = new Uint32Array(source.buffer, source.byteOffset, words);
    for (let w = 0; w < words; w++) to[w]! |= from[w]!;
    i = words << 2;
  }
  for (; i < source.length; i++) out[i]! |= source[i]!;
  return out;
}

export function hasBit(bitmap: Uint8Array, i: number): boolean {
  const byte = i >>> 3;
  return byte < bitmap.length && (bitmap[byte]! & (1 << (i & 7))) !== 0;
}

const bitsInByte = Uint8Array.from({ length: 256 }, (_, b) => {
  let n = 0;
  for (let v = b; v; v >>= 1) n += v & 1;
  return n;
});

export function popcount(bitmap: Uint8Array): number {
  let n = 0;
  let i = 0;
  if (bitmap.byteOffset % 4 === 0) {
    const words = bitmap.length >>> 2;
    const view = new Uint32Array(bitmap.buffer, bitmap.byteOffset, words);
    for (let w = 0; w < words; w++) {
      let v = view[w]!;
      v = v - ((v >>> 1) & 0x55555555);
      v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
      n += (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) | 0;
    }
    i = words << 2;
  }
  for (; i < bitmap.length; i++) n += bitsInByte[bitmap[i]!]!;
  return n;
}

function grow(bitmap: Uint8Array, length: number): Uint8Array {
  // Doubling keeps repeated growth linear; callers only ever read set bits, so slack is harmless.
  // A multiple of 8 bytes: a fresh ArrayBuffer is aligned, and whole words cover it.
  const grown = new Uint8Array((Math.max(length, bitmap.length * 2) + 7) & ~7);
  grown.set(bitmap);
  return grown;
}

/** Without trailing zero bytes: what is stored. */
export function trimmed(bitmap: Uint8Array): Uint8Array {
  let end = bitmap.length;
  while (end > 0 && bitmap[end - 1] === 0) end--;
  return bitmap.subarray(0, end);
}

// Cells hold few users or many. A sparse cell would be as wide as the highest user_int as a plain
// bitmap: at 100k users, 12.5 KB for an hour of one event name with 50 users (~2.8 GB for 90 days
// of hour cells), and 12.5 KB for a day of one event name on one channel with 1,400 users, where
// the list is 5.6 KB (the 7,200 day cells of that grain outgrew the 64 MB cell cache as bitmaps).
// So day and hour cells alike are stored in whichever of two forms is smaller, tagged by the first
// byte: 0 = the plain bitmap follows; 1 = the user_ints follow as ascending uint32 LE.
const plainTag = 0;
const listTag = 1;

/** The stored form of a cell's users. */
export function encodeUserSet(bitmap: Uint8Array): Uint8Array {
  const plain = trimmed(bitmap);
  const count = popcount(plain);
  if (4 * count >= plain.length) {
    const out = new Uint8Array(1 + plain.length);
    out[0] = plainTag;
    out.set(plain, 1);
    return out;
  }
  const out = new Uint8Array(1 + 4 * count);
  const view = new DataView(out.buffer);
  out[0] = listTag;
  let at = 1;
  for (let byte = 0; byte < plain.length; byte++) {
    const bits = plain[byte]!;
    if (bits === 0) continue;
    for (let bit = 0; bit < 8; bit++) {
      if ((bits & (1 << bit)) === 0) continue;
      view.setUint32(at, (byte << 3) | bit, true);
      at += 4;
    }
  }
  return out;
}

/** A cell's users decoded for reading, in the form they were stored: a plain bitmap (8-byte
 *  aligned and padded, so the OR runs on words) or the ascending user_ints. Never mutated once
 *  built: the cell cache hands the same one to every request. */
export type UserSet = Uint8Array | Uint32Array;

/** The read form of a stored user set, in buffers of its own (not the network buffer's). */
export function decodeUserSet(encoded: Uint8Array): UserSet {
  if (encoded.length === 0) return new Uint8Array(0);
  if (encoded[0] === plainTag) {
    const bitmap = new Uint8Array((encoded.length - 1 + 7) & ~7);
    bitmap.set(encoded.subarray(1));
    return bitmap;
  }
  const view = new DataView(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  const userInts = new Uint32Array((encoded.length - 1) >>> 2);
  for (let k = 0; k < userInts.length; k++) userInts[k] = view.getUint32(1 + 4 * k, true);
  return userInts;
}

/** How many users the set holds. */
export function userSetSize(users: UserSet): number {
  return users instanceof Uint8Array ? popcount(users) : users.length;
}

export function userSetHas(users: UserSet, i: number): boolean {
  if (users instanceof Uint8Array) return hasBit(users, i);
  let lo = 0;
  let hi = users.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (users[mid]! < i) lo = mid + 1;
    else hi = mid;
  }
  return lo < users.length && users[lo] === i;
}

/** target |= users; returns target, grown when needed. */
export function orUserSetInto(target: Uint8Array, users: UserSet): Uint8Array {
  return users instanceof Uint8Array ? orInto(target, users) : bitmapWith(target, users);
}
