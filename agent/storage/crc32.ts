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

/** Table-driven CRC-32, one byte per step. Exported so tests can check it against zlib's. */
export function crc32Portable(data: Uint8Array): number {
  const t = crcTable();
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = t[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const native: ((data: Uint8Array) => number) | null =
  typeof zlib.crc32 === 'function' ? (data) => zlib.crc32(data) >>> 0 : null;

export function crc32(data: Uint8Array): number {
  return native ? native(data) : crc32Portable(data);
}
