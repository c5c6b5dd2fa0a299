import { MAX_SLOT_VALUE_BYTES, slotSize, ValueArena, ValueRef } from '../../../agent/fsm/value_arena';

const utf8 = (s: string) => Buffer.from(s, 'utf8');

describe('value arena', () => {
  test('every length round-trips, from empty to the largest slot and past it', () => {
    const arena = new ValueArena();
    const lengths = [0, 1, 13, 14, 15, 16, 127, 128, 254, 255, 256, 257, 1000, 2047, 2048, 4093, MAX_SLOT_VALUE_BYTES, MAX_SLOT_VALUE_BYTES + 1, 70_000];
    const refs = lengths.map((n) => {
      const v = 'abcdefghij'.repeat(Math.ceil(n / 10) + 1).slice(0, n);
      return { v, ref: arena.store(utf8(v)) };
    });
    for (const { v, ref } of refs) {
      expect(arena.read(ref)).toBe(v);
      expect(arena.byteLength(ref)).toBe(v.length);
      expect(Buffer.from(arena.bytes(ref))).toEqual(utf8(v));
    }
    // A value larger than the largest slot is kept as the string itself.
    expect(typeof refs[lengths.indexOf(MAX_SLOT_VALUE_BYTES)].ref).toBe('number');
    expect(refs[lengths.indexOf(MAX_SLOT_VALUE_BYTES + 1)].ref).toBe(refs[lengths.indexOf(MAX_SLOT_VALUE_BYTES + 1)].v);
  });

  test('multi-byte UTF-8 is kept byte for byte, given as bytes or as a string', () => {
    const arena = new ValueArena();
    const v = 'värde 値 🚀 ключ';
    const a = arena.store(utf8(v));
    const b = arena.storeString(v);
    expect(arena.read(a)).toBe(v);
    expect(arena.read(b)).toBe(v);
    expect(arena.byteLength(b)).toBe(Buffer.byteLength(v));
    expect(Buffer.from(arena.bytes(b))).toEqual(utf8(v));
    const big = 'ü'.repeat(MAX_SLOT_VALUE_BYTES); // twice as many bytes as characters
    expect(arena.storeString(big)).toBe(big);
  });

  test('a slot holds its value with at most a sixteenth to spare above 256 bytes, and at most 15 bytes below', () => {
    for (let n = 0; n <= MAX_SLOT_VALUE_BYTES; n++) {
      const size = slotSize(n);
      expect(size).toBeGreaterThanOrEqual(n + 2);
      if (n + 2 > 256) expect(size).toBeLessThanOrEqual((n + 2) * 1.0625);
      else expect(size).toBeLessThanOrEqual(n + 2 + 15);
    }
    expect(slotSize(256)).toBe(272);
    expect(() => slotSize(MAX_SLOT_VALUE_BYTES + 1)).toThrow(/kept as a string/);
  });

  test('released slots are reused: rewriting the same keys does not grow the arena', () => {
    const arena = new ValueArena();
    const value = utf8('v'.repeat(256));
    let refs: ValueRef[] = Array.from({ length: 5000 }, () => arena.store(value));
    const grown = arena.allocatedBytes;
    expect(grown).toBeGreaterThanOrEqual(5000 * slotSize(256));
    for (let round = 0; round < 5; round++) {
      refs = refs.map((r) => {
        arena.release(r);
        return arena.store(value);
      });
    }
    expect(arena.allocatedBytes).toBe(grown);
  });

  test('values stored, replaced and released at random read back as a map holding them would', () => {
    const arena = new ValueArena();
    const model = new Map<number, { ref: ValueRef; v: string }>();
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let step = 0; step < 20_000; step++) {
      const key = rand(500);
      const prev = model.get(key);
      if (prev) arena.release(prev.ref);
      if (rand(4) === 0) {
        model.delete(key);
        continue;
      }
      const v = `${key}:${step}:` + 'x'.repeat(rand(600));
      model.set(key, { ref: arena.store(utf8(v)), v });
    }
    for (const { ref, v } of model.values()) expect(arena.read(ref)).toBe(v);
  });
});
