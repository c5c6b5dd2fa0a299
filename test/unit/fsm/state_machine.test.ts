import { encodeProposal, Op } from '../../../agent/fsm/commands';
import { encodeMemberContext, StateMachine } from '../../../agent/fsm/state_machine';
import { encodeConfChange } from '../../../agent/raft/confchange';
import { ConfChangeType, EntryType } from '../../../agent/raft/types';

function filled(): StateMachine {
  const sm = new StateMachine();
  let index = 0;
  const conf = (nodeId: number) =>
    sm.apply({ index: ++index, term: 1, type: EntryType.ConfChange, data: encodeConfChange({ type: ConfChangeType.AddVoter, nodeId, context: encodeMemberContext({ raft: `10.0.0.${nodeId}:7001`, api: `10.0.0.${nodeId}:8080` }) }) });
  const put = (key: string, value: string) =>
    sm.apply({ index: ++index, term: 1, type: EntryType.Normal, data: encodeProposal({ origin: 1, epoch: 1, seq: index }, { op: Op.Put, key, value }) });
  conf(1);
  conf(2);
  put('plain', 'v');
  put('ünïcødé ключ 鍵', 'värde 値 🚀');
  put('empty', '');
  put('long', 'x'.repeat(70_000));
  sm.apply({ index: ++index, term: 1, type: EntryType.Normal, data: encodeProposal({ origin: 1, epoch: 1, seq: index }, { op: Op.Delete, key: 'plain' }) });
  return sm;
}

describe('state machine image (snapshots)', () => {
  test('restores exactly what it serialized: keys, values, members, counters', () => {
    const a = filled();
    const b = new StateMachine();
    b.restore(a.serialize(), a.appliedIndex, a.conf);
    expect(b.keys()).toEqual(a.keys());
    for (const k of a.keys()) expect(b.get(k)).toBe(a.get(k));
    expect(b.get('ünïcødé ключ 鍵')).toBe('värde 値 🚀');
    expect(b.get('plain')).toBeNull();
    expect(b.memberList()).toEqual(a.memberList());
    expect(b.kvStats()).toEqual(a.kvStats());
    expect(b.appliedIndex).toBe(a.appliedIndex);
  });

  test('restores an image in the earlier JSON form, as snapshots taken by older versions hold', () => {
    const a = filled();
    const json = new TextEncoder().encode(
      JSON.stringify({ kv: a.keys().map((k) => [k, a.get(k)]), members: a.memberList(), conf: a.conf, stats: a.kvStats(), appliedIndex: a.appliedIndex }),
    );
    const b = new StateMachine();
    b.restore(json, a.appliedIndex, a.conf);
    expect(b.keys()).toEqual(a.keys());
    expect(b.get('long')).toBe(a.get('long'));
    expect(b.memberList()).toEqual(a.memberList());
  });

  test('a store larger than the image buffer streams in bounded pieces and restores exactly', () => {
    const a = filled();
    let index = a.appliedIndex;
    for (let i = 0; i < 3000; i++) {
      a.apply({ index: ++index, term: 1, type: EntryType.Normal, data: encodeProposal({ origin: 1, epoch: 1, seq: index }, { op: Op.Put, key: `key-${i}`, value: 'v'.repeat(200) + i }) });
    }
    a.apply({ index: ++index, term: 1, type: EntryType.Normal, data: encodeProposal({ origin: 1, epoch: 1, seq: index }, { op: Op.Put, key: 'huge', value: 'h'.repeat(600_000) }) });
    const image = a.image();
    const copies: Buffer[] = [];
    let largest = 0;
    for (const piece of image.pieces()) {
      largest = Math.max(largest, piece.length);
      copies.push(Buffer.from(piece));
    }
    const whole = Buffer.concat(copies);
    expect(whole.length).toBe(image.size);
    expect(copies.length).toBeGreaterThan(3);
    // Pieces stay within the reused buffer's 256 kB, except the one pair that is larger.
    expect(copies.filter((c) => c.length > 256 * 1024).map((c) => c.length)).toEqual([8 + 4 + 600_000]);
    expect(largest).toBe(8 + 4 + 600_000);
    const b = new StateMachine();
    b.restore(whole, a.appliedIndex, a.conf);
    expect(b.keys()).toEqual(a.keys());
    expect(b.get('key-2999')).toBe('v'.repeat(200) + 2999);
    expect(b.get('huge')).toBe(a.get('huge'));
    expect(Buffer.from(a.serialize())).toEqual(whole);
  });

  test('reading an image after the state moved on fails instead of mixing two states', () => {
    const a = filled();
    const image = a.image();
    const next = a.appliedIndex + 1;
    a.apply({ index: next, term: 1, type: EntryType.Normal, data: encodeProposal({ origin: 1, epoch: 1, seq: next }, { op: Op.Put, key: 'late', value: 'x' }) });
    expect(() => [...image.pieces()]).toThrow(`the state changed from index ${next - 1} to ${next} while its image was being written`);
  });

  test('a damaged image is refused with a clear error, not restored in part', () => {
    const image = filled().serialize();
    const b = new StateMachine();
    expect(() => b.restore(image.subarray(0, image.length - 3), 1, { voters: [1], learners: [] })).toThrow(/image is damaged: it ends at byte/);
    const wrong = Uint8Array.from(image);
    wrong[0] = 0x41;
    expect(() => b.restore(wrong, 1, { voters: [1], learners: [] })).toThrow(/image is damaged: it does not start with the image marker/);
  });
});
