import { CpuProfile, summarizeProfile } from '../../../bench/cpuprofile';
import { flameGraphSvg, foldedText, foldStacks } from '../../../bench/flamegraph';

const frame = (id: number, functionName: string, url = '', children: number[] = []) => ({
  id,
  callFrame: { functionName, url, lineNumber: id * 10 },
  children,
});

/**
 * (root) → main → {handle → {parse, write<&>}, (idle)}. Samples are taken at 100 µs steps
 * from startTime 1,000 µs; each sample's time runs until the next one.
 */
function profile(samples: number[]): CpuProfile {
  return {
    nodes: [
      frame(1, '(root)', '', [2, 6]),
      frame(2, 'main', 'file:///x/agent/main.js', [3]),
      frame(3, 'handle', 'file:///x/agent/api.js', [4, 5]),
      frame(4, 'parse', 'node:internal/http'),
      frame(5, 'write<&>'),
      frame(6, '(idle)'),
    ],
    samples,
    timeDeltas: [0, ...samples.slice(1).map(() => 100)],
    startTime: 1000,
    endTime: 1000 + 100 * samples.length,
  };
}

describe('CPU profile reading and flame graphs', () => {
  // parse ×3, write ×2, handle ×1, idle ×2, main ×1; the last sample has no time (no next sample).
  const p = profile([4, 4, 5, 3, 6, 6, 4, 5, 2, 4]);

  test('folds each sampled stack, outermost first, without idle time', () => {
    const folded = foldStacks(p, null);
    expect(Object.fromEntries(folded)).toEqual({
      'main /x/agent/main.js:21;handle /x/agent/api.js:31;parse node:internal/http:41': 300,
      'main /x/agent/main.js:21;handle /x/agent/api.js:31;write<&>': 200,
      'main /x/agent/main.js:21;handle /x/agent/api.js:31': 100,
      'main /x/agent/main.js:21': 100,
    });
    expect(foldedText(folded).split('\n')[0]).toBe('main /x/agent/main.js:21;handle /x/agent/api.js:31;parse node:internal/http:41 300');
  });

  test('a window keeps only the samples taken inside it', () => {
    // Samples at 1,000 .. 1,900 µs; the window [1,250, 1,450] holds the 4th and 5th (handle, idle).
    expect(Object.fromEntries(foldStacks(p, [1250, 1450]))).toEqual({
      'main /x/agent/main.js:21;handle /x/agent/api.js:31': 100,
    });
    const s = summarizeProfile(p, [1250, 1450]);
    expect(s.window).toBe('load');
    expect(s.topFunctions).toEqual([{ name: 'handle /x/agent/api.js:31', selfMs: 0, percent: 100 }]);
    // A window with no samples falls back to the whole profile.
    expect(summarizeProfile(p, [50_000, 60_000]).window).toBe('whole profile');
  });

  test('the SVG has one box per frame, as wide as its share of the busy time', () => {
    const svg = flameGraphSvg(foldStacks(p, null), 'test <profile>', 1020);
    const boxes = [...svg.matchAll(/<title>([^<]*)<\/title><rect x="([\d.]+)" y="(\d+)" width="([\d.]+)"/g)].map((m) => ({
      title: m[1],
      x: Number(m[2]),
      y: Number(m[3]),
      width: Number(m[4]),
    }));
    const byName = (prefix: string) => boxes.find((b) => b.title.startsWith(prefix))!;
    // 1,000 px for 700 µs of busy time.
    expect(byName('all').width).toBeCloseTo(1000, 1);
    expect(byName('main ').width).toBeCloseTo(1000, 1);
    expect(byName('handle ').width).toBeCloseTo((600 / 700) * 1000, 1);
    expect(byName('parse ').width).toBeCloseTo((300 / 700) * 1000, 1);
    expect(byName('write&lt;&amp;&gt;').width).toBeCloseTo((200 / 700) * 1000, 1);
    expect(boxes).toHaveLength(5);
    // Callees stand on their caller, and siblings sit side by side in name order.
    expect(byName('handle ').y).toBe(byName('main ').y - 16);
    expect(byName('parse ').y).toBe(byName('handle ').y - 16);
    expect(byName('write&lt;&amp;&gt;').x).toBeCloseTo(byName('parse ').x + byName('parse ').width, 1);
    expect(byName('parse ').title).toContain('(0.3 ms, 42.86%)');
    // Names are escaped: the document parses as XML.
    expect(svg).toContain('test &lt;profile&gt;');
    expect(svg).not.toMatch(/<title>[^<]*[<>&](?!amp;|lt;|gt;|quot;|apos;)[^<]*<\/title>/);
  });

  test('boxes narrower than half a pixel are left out', () => {
    const folded = new Map([
      ['a', 1_000_000],
      ['a;tiny', 1],
    ]);
    const svg = flameGraphSvg(folded, 't', 1020);
    expect(svg).toContain('<title>a (');
    expect(svg).not.toContain('<title>tiny');
  });
});
