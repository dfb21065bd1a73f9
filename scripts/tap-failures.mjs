#!/usr/bin/env node
// Prints each failed test of the given TAP files with its error, one block per test, so the
// end of a CI log (often all that is kept) says what failed and why, not only how many.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

for (const file of process.argv.slice(2)) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const stage = basename(file, '.tap');
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*not ok \d+ - (.*)$/.exec(lines[i]);
    if (!m) continue;
    const block = [];
    for (let j = i + 1; j < lines.length && !/^\s*\.\.\.$/.test(lines[j]); j++) block.push(lines[j].trim());
    const type = block.find((l) => l.startsWith('failureType:')) ?? '';
    // A suite that failed because a test under it did says nothing new.
    if (type.includes('subtestsFailed')) continue;
    const at = block.findIndex((l) => l.startsWith('error:'));
    let error = at < 0 ? '' : block[at].slice('error:'.length).trim();
    if (error === '|-' || error === '|') {
      const more = [];
      for (let j = at + 1; j < block.length && !/^[a-zA-Z_]+:/.test(block[j]); j++) more.push(block[j]);
      error = more.join(' ');
    }
    console.log(`FAILED [${stage}] ${m[1].replace(/ # (SKIP|TODO).*$/, '')}\n    ${type}\n    ${error.slice(0, 1500)}`);
  }
}
