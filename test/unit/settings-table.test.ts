/** One source of truth for settings: config.json, the usage text and the README agree with SETTINGS. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SETTINGS, parseSettings, settingsUsage } from '../../src/config/settings.js';

const ROOT = join(import.meta.dirname, '../../..');
const manifest = JSON.parse(readFileSync(join(ROOT, 'config.json'), 'utf8')) as { env: { name: string; value: string; settable?: string[] }[] };
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

describe('settings table', () => {
  it('config.json declares exactly the table, settable where docker plugin set may change it', () => {
    assert.deepEqual(manifest.env.map((e) => e.name).sort(), SETTINGS.map((s) => s.env).sort());
    for (const s of SETTINGS) {
      const e = manifest.env.find((x) => x.name === s.env)!;
      assert.equal(e.settable?.includes('value') ?? false, s.settable, `${s.env} settable`);
      assert.equal(e.value, s.managed ?? s.default ?? '', `${s.env} value`);
      if (e.value !== '') assert.ok(parseSettings({ [s.env]: e.value }).ok, `${s.env}=${e.value} parses`);
    }
  });

  it('the README table lists every setting with its default, and nothing else', () => {
    const table = readme.slice(readme.indexOf('### Plugin settings'), readme.indexOf('###', readme.indexOf('### Plugin settings') + 5));
    const rows = [...table.matchAll(/^\| `([A-Z_]+)` \| ([^|]*) \|/gm)].map((m) => [m[1]!, m[2]!.trim()] as const);
    assert.deepEqual(rows.map(([n]) => n).sort(), SETTINGS.map((s) => s.env).sort());
    for (const [name, shown] of rows) {
      const s = SETTINGS.find((x) => x.env === name)!;
      assert.equal(shown, s.default !== undefined ? `\`${s.default}\`` : '—', `${name} default in the README`);
    }
  });

  it('the usage text lists every setting', () => {
    const usage = settingsUsage();
    for (const s of SETTINGS) assert.match(usage, new RegExp(`^  ${s.env} `, 'm'));
  });
});
