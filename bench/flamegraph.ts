/**
 * Flame graphs of a V8 CPU profile (node --cpu-prof), in two forms:
 *
 * - folded stacks, one line per distinct stack: `outer;inner;innermost microseconds`, the
 *   input format of flamegraph.pl, inferno and speedscope;
 * - a self-contained SVG: each box is a function, standing on the function that called it,
 *   as wide as the share of the busy time spent in it and in what it called. Hovering a box
 *   shows its figures. Idle time is left out, so the full width is the busy time.
 */
import { CpuProfile, frameName, IDLE, selfTimeByNode } from './cpuprofile';

/** Stack (frames joined by ';', outermost first) → microseconds sampled with it on top. */
export type FoldedStacks = Map<string, number>;

const ROOT = '(root)';

/** The stacks sampled inside `window` (or in the whole profile), idle time left out. */
export function foldStacks(p: CpuProfile, window: [number, number] | null): FoldedStacks {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const folded: FoldedStacks = new Map();
  for (const [id, us] of selfTimeByNode(p, window)) {
    if (us <= 0 || byId.get(id)!.callFrame.functionName === IDLE) continue;
    const frames: string[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const cf = byId.get(at)!.callFrame;
      if (cf.functionName !== ROOT) frames.push(frameName(cf).replace(/;/g, ':'));
    }
    const stack = frames.reverse().join(';');
    folded.set(stack, (folded.get(stack) ?? 0) + us);
  }
  return folded;
}

/** The folded stacks as text, heaviest first; times in whole microseconds. */
export function foldedText(folded: FoldedStacks): string {
  return [...folded.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([stack, us]) => `${stack} ${Math.round(us)}\n`)
    .join('');
}

interface Box {
  name: string;
  us: number;
  children: Map<string, Box>;
}

function tree(folded: FoldedStacks): Box {
  const root: Box = { name: 'all', us: 0, children: new Map() };
  for (const [stack, us] of folded) {
    root.us += us;
    let at = root;
    for (const name of stack.split(';')) {
      let next = at.children.get(name);
      if (!next) at.children.set(name, (next = { name, us: 0, children: new Map() }));
      next.us += us;
      at = next;
    }
  }
  return root;
}

const FRAME_HEIGHT = 16;
const HEADER = 36;
const PAD = 10;
const CHAR_WIDTH = 6.6; // 11 px monospace
/** Boxes narrower than this many pixels are left out (their time stays in their caller's box). */
const MIN_WIDTH = 0.5;

/** Warm colours for the agent's own code, green for dependencies, yellow for node, grey for V8. */
function colour(name: string): string {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  const v = h % 40;
  if (/ (dist\/)?(agent|bench)\//.test(name)) return `rgb(${215 + (v % 40)},${90 + v * 2},40)`;
  if (name.includes('node_modules/')) return `rgb(${80 + v},${170 + v},${80 + v})`;
  if (name.includes(' node:')) return `rgb(${220 + (v % 35)},${190 + v},60)`;
  return `rgb(${160 + v},${160 + v},${165 + v})`;
}

function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/**
 * The SVG flame graph of `folded`, `width` pixels wide. Siblings are ordered by name, as
 * flamegraph.pl does, so the same code paths sit in the same place from one run to the next.
 */
export function flameGraphSvg(folded: FoldedStacks, title: string, width = 1200): string {
  const root = tree(folded);
  const scale = root.us > 0 ? (width - 2 * PAD) / root.us : 0;
  const boxes: { box: Box; x: number; depth: number }[] = [];
  let maxDepth = 0;
  const place = (box: Box, x: number, depth: number): void => {
    if (box.us * scale < MIN_WIDTH) return;
    boxes.push({ box, x, depth });
    maxDepth = Math.max(maxDepth, depth);
    let childX = x;
    for (const c of [...box.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      place(c, childX, depth + 1);
      childX += c.us * scale;
    }
  };
  place(root, PAD, 0);
  const height = HEADER + (maxDepth + 1) * FRAME_HEIGHT + PAD;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fdfdf8"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
  ];
  for (const { box, x, depth } of boxes) {
    const w = box.us * scale;
    const y = height - PAD - (depth + 1) * FRAME_HEIGHT;
    const ms = box.us / 1000;
    const pct = (100 * box.us) / root.us;
    const label = box === root ? `all: ${ms.toFixed(0)} ms busy` : box.name;
    const fits = Math.floor((w - 6) / CHAR_WIDTH);
    const text = fits < 3 ? '' : label.length <= fits ? label : `${label.slice(0, fits - 2)}..`;
    out.push(
      `<g><title>${escapeXml(label)} (${ms.toFixed(1)} ms, ${pct.toFixed(2)}%)</title>` +
        `<rect x="${x.toFixed(2)}" y="${y}" width="${w.toFixed(2)}" height="${FRAME_HEIGHT - 1}" fill="${box === root ? '#ccc' : colour(box.name)}" rx="2"/>` +
        (text ? `<text x="${(x + 3).toFixed(2)}" y="${y + FRAME_HEIGHT - 4}">${escapeXml(text)}</text>` : '') +
        `</g>`,
    );
  }
  out.push('</svg>\n');
  return out.join('\n');
}
