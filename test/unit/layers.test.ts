/**
 * The layers of docs/ARCHITECTURE.md hold in the code: every import under src/ points down the
 * "## Layers" table (or within its own row), and no modules import each other, directly or
 * around a longer loop. The order is read from the doc itself, so the doc and the code cannot
 * drift apart: a new folder must get its row before its code may be imported.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const ROOT = join(import.meta.dirname, '../../..');
const SRC = join(ROOT, 'src');

interface Layer {
  name: string;
  /** Folders (`driver/`) and files (`cli.ts`), relative to src/. */
  entries: string[];
}

/** The rows of the "## Layers" table, top first: each row's layer name and its folder/file column. */
export function layersOf(doc: string): Layer[] {
  const start = doc.search(/^## Layers\s*$/m);
  if (start < 0) throw new Error('docs/ARCHITECTURE.md has no "## Layers" section');
  const rest = doc.slice(start + '## Layers'.length);
  const end = rest.search(/^## /m);
  const section = end < 0 ? rest : rest.slice(0, end);
  const rows = section
    .split('\n')
    .filter((l) => l.trim().startsWith('|'))
    .map((l) => l.trim().replace(/^\||\|$/g, '').split('|').map((c) => c.trim()));
  // The header (`layer | folder | job`) and the separator (`---`) are not layers.
  return rows
    .filter((cells, i) => i > 0 && !cells.every((c) => /^:?-+:?$/.test(c)))
    .map((cells) => ({ name: cells[0] ?? '', entries: [...(cells[1] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!) }));
}

/** The module specifiers of every import and re-export in `text`, type-only ones included. */
export function importsOf(text: string): string[] {
  const found: string[] = [];
  // `import x from '…'`, `import type { … } from '…'` over several lines, `import '…'`,
  // `export { … } from '…'`, `export * from '…'`, `export type { … } from '…'`.
  const statement = /^[ \t]*(?:import|export)\b(?:[^'";]*?\bfrom)?\s*['"]([^'"]+)['"]/gm;
  const dynamic = /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const m of text.matchAll(statement)) found.push(m[1]!);
  for (const m of text.matchAll(dynamic)) found.push(m[1]!);
  return found;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const path = join(dir, d.name);
    if (d.isDirectory()) return tsFiles(path);
    return d.name.endsWith('.ts') && !d.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** `driver/server.ts` for a file of src/, with forward slashes. */
const srcPath = (file: string): string => relative(SRC, file).split(sep).join('/');

/** The src/ module a relative specifier names (`./x.js` → `…/x.ts`), or undefined. */
function resolveImport(from: string, spec: string): string | undefined {
  const base = resolve(dirname(from), spec);
  const candidates = [base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')];
  return candidates.find((c) => c.endsWith('.ts') && existsSync(c));
}

/** Every import cycle, one per strongly connected group of modules (Tarjan), as a path back to its start. */
export function cyclesOf(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1 || (graph.get(v) ?? []).includes(v)) groups.push(group);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  // One concrete loop per group: the shortest way from its first module back to itself.
  return groups.map((group) => {
    const members = new Set(group);
    const start = [...group].sort()[0]!;
    const came = new Map<string, string>();
    const queue = [start];
    while (queue.length) {
      const v = queue.shift()!;
      for (const w of graph.get(v) ?? []) {
        if (w === start) {
          const path = [v];
          for (let u = v; u !== start; ) path.unshift((u = came.get(u)!));
          return [...path, start];
        }
        if (members.has(w) && !came.has(w)) {
          came.set(w, v);
          queue.push(w);
        }
      }
    }
    return [start, start];
  });
}

const layers = layersOf(readFileSync(join(ROOT, 'docs/ARCHITECTURE.md'), 'utf8'));

/** Which row of the table a src/ file belongs to, or undefined. */
function rowOf(path: string): number | undefined {
  const rows = layers.flatMap((l, i) => (l.entries.some((e) => (e.endsWith('/') ? path.startsWith(e) : path === e)) ? [i] : []));
  return rows.length === 1 ? rows[0] : undefined;
}

/** Every import between src/ modules: importer → imported, both as `folder/file.ts`. */
function importGraph(): { graph: Map<string, string[]>; unresolved: string[] } {
  const graph = new Map<string, string[]>();
  const unresolved: string[] = [];
  for (const file of tsFiles(SRC).sort()) {
    const to = new Set<string>();
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue; // node:*, packages
      const target = resolveImport(file, spec);
      if (!target || !target.startsWith(SRC + sep)) unresolved.push(`${srcPath(file)}: ${spec}`);
      else to.add(srcPath(target));
    }
    graph.set(srcPath(file), [...to].sort());
  }
  return { graph, unresolved };
}

describe('layers (docs/ARCHITECTURE.md "## Layers")', () => {
  it('the table is read: layers in order, each naming its folders or files', () => {
    assert.ok(layers.length >= 5, `only ${layers.length} rows read from the table`);
    for (const l of layers) assert.ok(l.entries.length, `the layer ${l.name} names no folder or file`);
    assert.equal(layers.at(-1)?.entries[0], 'util/', 'util/ is the bottom layer');
  });

  it('the parser sees every form of import', () => {
    const text = [
      "import a from './a.js';",
      "import type { B } from './b.js';",
      'import {\n  c,\n  type C,\n} from "./c.js";',
      "import './d.js';",
      "export { e } from './e.js';",
      "export * as f from './f.js';",
      "export type { G } from './g.js';",
      "const h = await import('./h.js');",
      " * import { no } from './comment.js' in a doc comment is not an import",
      "export const i = 'not an import';",
    ].join('\n');
    assert.deepEqual(importsOf(text), ['./a.js', './b.js', './c.js', './d.js', './e.js', './f.js', './g.js', './h.js']);
    assert.deepEqual(cyclesOf(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]])), [['a', 'b', 'c', 'a']]);
  });

  it('every file of src/ is in exactly one layer, and every relative import resolves', () => {
    const { graph, unresolved } = importGraph();
    const homeless = [...graph.keys()].filter((p) => rowOf(p) === undefined);
    assert.deepEqual(homeless, [], 'files in no row (or in two) of the Layers table');
    assert.deepEqual(unresolved, [], 'imports that name no module of src/');
  });

  it('no import points up the list', () => {
    const { graph } = importGraph();
    const up: string[] = [];
    for (const [from, tos] of graph) {
      const a = rowOf(from);
      for (const to of tos) {
        const b = rowOf(to);
        if (a !== undefined && b !== undefined && b < a) up.push(`${from} (${layers[a]!.name}) imports ${to} (${layers[b]!.name})`);
      }
    }
    assert.deepEqual(up, [], `imports up the layer list ${layers.map((l) => l.name).join(' > ')}`);
  });

  it('no modules import each other, directly or through others', () => {
    const cycles = cyclesOf(importGraph().graph).map((c) => c.join(' → '));
    assert.deepEqual(cycles, [], 'import cycles');
  });
});
