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
});
