import * as zlib from 'zlib';

/**
 * CRC-32 (IEEE 802.3, the polynomial of zlib, gzip and PNG) over every record, hard state and
 * snapshot file. Node ships a native implementation from 20.15; older Node 20 releases fall
 * back to the table-driven one below, which produces the same values, so files stay readable
 * whichever Node wrote them.
 */

let table: Uint32Array | null = null;

function crcTable(): Uint32Array {
  if (table) return table;
  table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/**
 * Table-driven CRC-32, one byte per step. `previous` continues a checksum over data that
 * follows what it covered (0 to start). Exported so tests can check it against zlib's.
 */
export function crc32Portable(data: Uint8Array, previous = 0): number {
  const t = crcTable();
  let crc = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) crc = t[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const native: ((data: Uint8Array, previous: number) => number) | null =
  typeof zlib.crc32 === 'function' ? (data, previous) => zlib.crc32(data, previous) >>> 0 : null;

/** CRC-32 of `data`, or of what `previous` covered followed by `data`. */
export function crc32(data: Uint8Array, previous = 0): number {
  // zlib.crc32 answers 0 for an empty view of an empty ArrayBuffer, whatever `previous` is.
  if (data.length === 0) return previous >>> 0;
  return native ? native(data, previous) : crc32Portable(data, previous);
}
