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
