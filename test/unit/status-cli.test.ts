import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatStatus } from '../../src/ops/status-cli.js';

describe('tslink status', () => {
  it('prints no control character from an error text, a hostname or a name (issue 22)', () => {
    const hostile = 'boom\u001b[2J\u001b]0;pwned\u0007\r\u009b31m';
    const out = formatStatus({
      source: 'status files',
      endpoints: [{ endpoint: 'e'.repeat(64), network: 'n'.repeat(64), containerName: `c\u001b[1m`, hostname: 'web\u001b[0m', state: 'failed', since: new Date().toISOString(), tailscaleIPs: [], lastError: hostile, restarts: 0, crashLoop: false }],
    });
    assert.doesNotMatch(out, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/, 'only line breaks remain');
    assert.match(out, /boom \[2J \]0;pwned /, 'the text itself stays readable');
  });

  it('shows each node\'s direct and relayed peers as tailscaled sees them (issue 25)', () => {
    const base = { network: 'n'.repeat(64), state: 'running' as const, since: new Date().toISOString(), tailscaleIPs: ['100.64.0.1'], restarts: 0, crashLoop: false };
    const out = formatStatus({
      source: 'status files',
      endpoints: [{ ...base, endpoint: 'a'.repeat(64), hostname: 'web', peers: { direct: 9, relayed: 1 } }, { ...base, endpoint: 'b'.repeat(64), hostname: 'db' }],
    });
    assert.match(out, /PEERS DIRECT\/RELAYED/);
    assert.match(out.split('\n').find((l) => l.includes('web')) ?? '', / 9\/1 /);
    assert.match(out.split('\n').find((l) => l.includes(' db ')) ?? '', / - /, 'not known yet');
  });
});
