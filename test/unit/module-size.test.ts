/**
 * Issue 23's limits on the shape of src/: no module over 300 lines, no function of 60 lines or
 * more (arrow functions, methods and constructors included, each measured from its first line
 * to its last). Read with the TypeScript parser, so a brace in a string or a comment cannot
 * fool the count.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

const SRC = join(import.meta.dirname, '../../../src');
const MAX_MODULE_LINES = 300;
const MAX_FUNCTION_LINES = 59;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** Every function-like node of a module: its name as a reader would find it, and its lines. */
export function functionLengths(file: string, text: string): { name: string; lines: number }[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const found: { name: string; lines: number }[] = [];
  const line = (pos: number): number => sf.getLineAndCharacterOfPosition(pos).line;
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const parent = node.parent;
      const named = (node as { name?: ts.Node }).name ?? (parent && ts.isVariableDeclaration(parent) ? parent.name : undefined);
      found.push({ name: `${named ? named.getText(sf) : '(anonymous)'}:${line(node.getStart(sf)) + 1}`, lines: line(node.end) - line(node.getStart(sf)) + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

describe('module and function size (issue 23)', () => {
  const files = sources(SRC);

  it('reads the modules', () => assert.ok(files.length > 50, `only ${files.length} modules found under ${SRC}`));

  it(`no module is over ${MAX_MODULE_LINES} lines`, () => {
    const over = files.map((f) => [relative(SRC, f), readFileSync(f, 'utf8').split('\n').length - 1] as const).filter(([, n]) => n > MAX_MODULE_LINES);
    assert.deepEqual(over, []);
  });

  it(`no function is ${MAX_FUNCTION_LINES + 1} lines or more`, () => {
    const over = files.flatMap((f) => functionLengths(f, readFileSync(f, 'utf8')).filter((fn) => fn.lines > MAX_FUNCTION_LINES).map((fn) => `${relative(SRC, f)} ${fn.name}: ${fn.lines} lines`));
    assert.deepEqual(over, []);
  });

  it('counts a function from its first line to its last, arrows and methods included', () => {
    const body = Array.from({ length: 70 }, (_, i) => `  x += ${i}; // } {`).join('\n');
    const text = `class A {\n  m(): void {\n${body}\n  }\n}\nconst f = () => {\n${body}\n};\nfunction g() { return 1; }\n`;
    const lengths = functionLengths('t.ts', text);
    assert.deepEqual(lengths.map((l) => l.name), ['m:2', 'f:75', 'g:147']);
    assert.deepEqual(lengths.map((l) => l.lines), [72, 72, 1]);
  });
});
