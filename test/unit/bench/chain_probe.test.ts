import { frame, frames } from '../../../bench/chain_probe';

/** Feeds the chunks to one frame splitter and returns the payloads it gives, as text. */
function split(chunks: Buffer[]): string[] {
  const got: string[] = [];
  const feed = frames((p) => got.push(p.toString()));
  for (const c of chunks) feed(c);
  return got;
}

describe('reference chain framing', () => {
  it('gives every frame of a chunk that holds several, the empty one included', () => {
    expect(split([Buffer.concat([frame(Buffer.from('one')), frame(Buffer.alloc(0)), frame(Buffer.from('three'))])])).toEqual(['one', '', 'three']);
  });

  it('waits for the rest of a frame cut anywhere, inside its length too', () => {
    const all = Buffer.concat([frame(Buffer.from('alpha')), frame(Buffer.from('beta'))]);
    for (let a = 1; a < all.length; a++) {
      for (let b = a + 1; b < all.length; b++) {
        expect(split([all.subarray(0, a), all.subarray(a, b), all.subarray(b)])).toEqual(['alpha', 'beta']);
      }
    }
  });

  it('gives nothing until a frame is whole', () => {
    const f = frame(Buffer.from('pending'));
    expect(split([f.subarray(0, f.length - 1)])).toEqual([]);
  });
});
