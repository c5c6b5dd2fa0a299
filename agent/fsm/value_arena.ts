/**
 * Where the key-value store keeps its values: as UTF-8 bytes in fixed-size slots of large
 * buffers, outside V8's heap.
 *
 * Kept as strings, every value a write replaces became garbage in V8's old generation (a
 * value lives until its key is written again, long enough to be promoted), and the old
 * generation is sized at one and a half times what it holds after a collection: the store's
 * values took up to half again their size in heap room, plus the dead copies waiting for the
 * next major collection, and every major collection marked them. In a slot, a value costs its
 * bytes rounded up to its size class (CLASS_SIZES), a write reuses the slot its key's previous
 * value freed, and a put copies the value's bytes from the log entry without making a string
 * of them at all.
 *
 * A value is referred to by a ValueRef: a slot number (a small integer, which V8 stores in
 * the map without an object of its own) or, for a value larger than the largest slot, the
 * value itself as a string, on the heap as before.
 */
export type ValueRef = number | string;

/** Bytes before a value in its slot: its length. */
const LENGTH_BYTES = 2;
/** Slot sizes are multiples of this. */
const GRAIN = 16;
/** The largest slot; a value that does not fit (with its length) is kept as a string. */
const MAX_SLOT = 4096;
/** The buffers slots are cut from (many slots each: the largest slot is 4 kB). */
const CHUNK_BYTES = 256 * 1024;
/** A ref is (class << SLOT_BITS) | slot within the class: below 2^30, a small integer to V8. */
const SLOT_BITS = 23;
const SLOT_MASK = (1 << SLOT_BITS) - 1;

/**
 * Slot sizes: every 16 bytes up to 256, then sixteen classes per doubling, so that above 256
 * bytes a slot is at most a sixteenth larger than the value (with its length) it holds. A
 * value of 256 bytes takes 272 (an eighth per doubling gave it 288: 6% more memory for what
 * is a common size). A class takes its first 256 kB buffer only once a value of its size is
 * stored.
 */
const CLASS_SIZES: readonly number[] = (() => {
  const sizes: number[] = [];
  for (let s = GRAIN; s <= 256; s += GRAIN) sizes.push(s);
  for (let base = 256; base < MAX_SLOT; base *= 2) for (let q = 1; q <= 16; q++) sizes.push(base + (base / 16) * q);
  return sizes;
})();
if (CLASS_SIZES.length << SLOT_BITS > 2 ** 30) throw new Error('value refs would not be small integers: fewer classes or SLOT_BITS');

/** CLASS_OF[ceil(need / GRAIN)]: the smallest class whose slots hold `need` bytes. */
const CLASS_OF: Uint8Array = (() => {
  const t = new Uint8Array(MAX_SLOT / GRAIN + 1);
  let c = 0;
  for (let g = 0; g < t.length; g++) {
    while (CLASS_SIZES[c] < g * GRAIN) c++;
    t[g] = c;
  }
  return t;
})();

/** The longest value, in UTF-8 bytes, that goes into a slot. */
export const MAX_SLOT_VALUE_BYTES = MAX_SLOT - LENGTH_BYTES;

function classOf(valueBytes: number): number {
  return CLASS_OF[Math.ceil((valueBytes + LENGTH_BYTES) / GRAIN)];
}

/** The size of the slot a value of `valueBytes` UTF-8 bytes takes (its length included). */
export function slotSize(valueBytes: number): number {
  if (valueBytes > MAX_SLOT_VALUE_BYTES) throw new RangeError(`a value of ${valueBytes} bytes is kept as a string, not in a slot`);
  return CLASS_SIZES[classOf(valueBytes)];
}

interface SlotClass {
  size: number;
  perChunk: number;
  chunks: Buffer[];
  /** Slots freed, reused first (last freed first). */
  free: number[];
  /** Slots below this have been handed out at least once. */
  used: number;
}

export class ValueArena {
  private readonly classes: SlotClass[] = CLASS_SIZES.map((size) => ({
    size,
    perChunk: Math.floor(CHUNK_BYTES / size),
    chunks: [],
    free: [],
    used: 0,
  }));
  /** Bytes of the buffers allocated for slots. */
  get allocatedBytes(): number {
    return this.classes.reduce((n, c) => n + c.chunks.length * c.perChunk * c.size, 0);
  }

  /** Keeps a value given as UTF-8 bytes; returns its ref. */
  store(bytes: Uint8Array): ValueRef {
    if (bytes.length > MAX_SLOT_VALUE_BYTES) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8');
    const ref = this.take(bytes.length);
    const buf = this.chunk(ref);
    const at = this.offset(ref);
    buf.writeUInt16BE(bytes.length, at);
    buf.set(bytes, at + LENGTH_BYTES);
    return ref;
  }

  /** Keeps a value given as a string (images in the earlier JSON form); returns its ref. */
  storeString(value: string): ValueRef {
    return Buffer.byteLength(value) > MAX_SLOT_VALUE_BYTES ? value : this.store(Buffer.from(value));
  }

  read(ref: ValueRef): string {
    if (typeof ref === 'string') return ref;
    const buf = this.chunk(ref);
    const at = this.offset(ref) + LENGTH_BYTES;
    return buf.toString('utf8', at, at + buf.readUInt16BE(at - LENGTH_BYTES));
  }

  /** The value's UTF-8 bytes: a view of its slot, valid until the slot is released. */
  bytes(ref: ValueRef): Uint8Array {
    if (typeof ref === 'string') return Buffer.from(ref);
    const buf = this.chunk(ref);
    const at = this.offset(ref) + LENGTH_BYTES;
    return buf.subarray(at, at + buf.readUInt16BE(at - LENGTH_BYTES));
  }

  byteLength(ref: ValueRef): number {
    if (typeof ref === 'string') return Buffer.byteLength(ref);
    return this.chunk(ref).readUInt16BE(this.offset(ref));
  }

  /** Gives the value's slot back for reuse; the ref must not be used again. */
  release(ref: ValueRef): void {
    if (typeof ref === 'string') return;
    this.classes[ref >>> SLOT_BITS].free.push(ref & SLOT_MASK);
  }

  private take(valueBytes: number): number {
    const ci = classOf(valueBytes);
    const c = this.classes[ci];
    let slot = c.free.pop();
    if (slot === undefined) {
      if (c.used > SLOT_MASK) throw new Error(`the key-value store holds more than ${SLOT_MASK + 1} values of ${c.size - LENGTH_BYTES} bytes or less`);
      slot = c.used++;
      if (slot >= c.chunks.length * c.perChunk) c.chunks.push(Buffer.allocUnsafeSlow(c.perChunk * c.size));
    }
    return (ci << SLOT_BITS) | slot;
  }

  private chunk(ref: number): Buffer {
    const c = this.classes[ref >>> SLOT_BITS];
    return c.chunks[Math.floor((ref & SLOT_MASK) / c.perChunk)];
  }

  private offset(ref: number): number {
    const c = this.classes[ref >>> SLOT_BITS];
    return ((ref & SLOT_MASK) % c.perChunk) * c.size;
  }
}
