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
    image.close();
    const b = new StateMachine();
    b.restore(whole, a.appliedIndex, a.conf);
    expect(b.keys()).toEqual(a.keys());
    expect(b.get('key-2999')).toBe('v'.repeat(200) + 2999);
    expect(b.get('huge')).toBe(a.get('huge'));
    expect(Buffer.from(a.serialize())).toEqual(whole);
  });

  test('an open image keeps the state it was opened on while entries go on being applied', () => {
    const a = filled();
    const before = a.serialize();
    const image = a.image();
    expect(image.index).toBe(a.appliedIndex);
    let index = a.appliedIndex;
    const put = (key: string, value: string) =>
      a.apply({ index: ++index, term: 1, type: EntryType.Normal, data: encodeProposal({ origin: 1, epoch: 1, seq: index }, { op: Op.Put, key, value }) });
    const del = (key: string) =>
      a.apply({ index: ++index, term: 1, type: EntryType.Normal, data: encodeProposal({ origin: 1, epoch: 1, seq: index }, { op: Op.Delete, key }) }).value;
    put('late', 'x');
    put('empty', 'now set');
    expect(del('long')).toBe(true);
    expect(del('long')).toBe(false);
    expect(del('never')).toBe(false);
    put('gone again', '1');
    expect(del('gone again')).toBe(true);
    put('back', '1');
    del('back');
    put('back', '2');
    // Reads see the changes at once.
    const expected = { late: 'x', empty: 'now set', back: '2', 'ünïcødé ключ 鍵': 'värde 値 🚀' };
    const check = (sm: StateMachine) => {
      expect(sm.keys()).toEqual(Object.keys(expected).sort());
      for (const [k, v] of Object.entries(expected)) expect(sm.get(k)).toBe(v);
      expect(sm.get('long')).toBeNull();
      expect(sm.get('gone again')).toBeNull();
      expect(sm.kvStats().keys).toBe(4);
      const bytes = Object.entries(expected).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
      expect(sm.kvStats().bytes).toBe(bytes);
    };
    check(a);
    // The image is the state as it was.
    expect(Buffer.concat([...image.pieces()])).toEqual(Buffer.from(before));
    // One image at a time: a second would fold this one's changes into the store it reads.
    expect(() => a.image()).toThrow(/already open/);
    image.close();
    image.close();
    check(a);
    const b = new StateMachine();
    b.restore(a.serialize(), a.appliedIndex, a.conf);
    check(b);
  });

  test('restoring a snapshot while an image is open: the image still reads its own state, and closing it changes nothing', () => {
    const a = filled();
    const before = a.serialize();
    const image = a.image();
    const other = new StateMachine();
    other.apply({ index: 1, term: 1, type: EntryType.Normal, data: encodeProposal({ origin: 1, epoch: 1, seq: 1 }, { op: Op.Put, key: 'other', value: 'o' }) });
    a.restore(other.serialize(), 1, { voters: [1], learners: [] });
    expect(a.keys()).toEqual(['other']);
    expect(Buffer.concat([...image.pieces()])).toEqual(Buffer.from(before));
    image.close();
    expect(a.keys()).toEqual(['other']);
    expect(a.get('long')).toBeNull();
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

describe('removed members', () => {
  const change = (sm: StateMachine, index: number, type: ConfChangeType, nodeId: number) =>
    sm.apply({ index, term: 1, type: EntryType.ConfChange, data: encodeConfChange({ type, nodeId, context: type === ConfChangeType.RemoveNode ? new Uint8Array(0) : encodeMemberContext({ raft: `10.0.0.${nodeId}:7001`, api: '' }) }) });

  test('a removal is kept with its index until the node is added back, and snapshots carry it', () => {
    const sm = new StateMachine();
    for (const id of [1, 2, 3]) change(sm, id, ConfChangeType.AddVoter, id);
    change(sm, 4, ConfChangeType.RemoveNode, 3);
    change(sm, 5, ConfChangeType.RemoveNode, 2);
    expect([sm.removedAt(1), sm.removedAt(2), sm.removedAt(3)]).toEqual([undefined, { index: 5, term: 1 }, { index: 4, term: 1 }]);
    const restored = new StateMachine();
    restored.restore(sm.serialize(), sm.appliedIndex, sm.conf);
    expect([restored.removedAt(2), restored.removedAt(3)]).toEqual([{ index: 5, term: 1 }, { index: 4, term: 1 }]);
    // Added back (as a learner here): a member again, no longer removed.
    change(sm, 6, ConfChangeType.AddLearner, 3);
    expect(sm.removedAt(3)).toBeUndefined();
    expect(sm.removedAt(2)).toEqual({ index: 5, term: 1 });
  });

  test('an image written before removals were kept restores with none', () => {
    const header = Buffer.from(JSON.stringify({ members: [{ id: 1, raftAddress: 'a:1', apiAddress: '' }], conf: { voters: [1], learners: [] }, stats: { puts: 0, deletes: 0, appends: 0 }, appliedIndex: 7 }));
    const lengths = Buffer.alloc(8);
    lengths.writeUInt32BE(header.length, 0);
    const image = Buffer.concat([Buffer.from('PGRAFTSM', 'latin1'), lengths.subarray(0, 4), header, lengths.subarray(4)]);
    const sm = new StateMachine();
    sm.restore(image, 7, { voters: [1], learners: [] });
    expect(sm.memberList().map((m) => m.id)).toEqual([1]);
    expect(sm.removedAt(2)).toBeUndefined();
  });
});
