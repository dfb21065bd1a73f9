/**
 * The size rules of issue 23, checked on every module in src/: no module over 300 lines, no
 * function (declaration, method, arrow or expression) over 60. A module or a function past them
 * is doing more than one job; split it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
const ROOT_DIR = join(import.meta.dirname, '../../..');

const MAX_MODULE_LINES = 300;
const MAX_FUNCTION_LINES = 60;
const SRC = join(ROOT_DIR, 'src');

function modules(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? modules(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('module and function sizes (issue 23)', () => {
  const files = modules(SRC);

  it(`no module in src/ is over ${MAX_MODULE_LINES} lines`, () => {
    assert.ok(files.length > 40, 'the modules were found');
    const long = files.map((f) => [relative(ROOT_DIR, f), readFileSync(f, 'utf8').split('\n').length - 1] as const).filter(([, n]) => n > MAX_MODULE_LINES);
    assert.deepEqual(long, []);
  });

  it(`no function in src/ is over ${MAX_FUNCTION_LINES} lines`, () => {
    const long: string[] = [];
    for (const f of files) {
      const sf = ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true);
      const visit = (n: ts.Node): void => {
        if ((ts.isFunctionLike(n) && 'body' in n && n.body) || ts.isArrowFunction(n)) {
          const lines = sf.getLineAndCharacterOfPosition(n.end).line - sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
          if (lines > MAX_FUNCTION_LINES) long.push(`${relative(ROOT_DIR, f)}:${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1} (${lines} lines)`);
        }
        ts.forEachChild(n, visit);
      };
      visit(sf);
    }
    assert.deepEqual(long, []);
  });
});
