import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { freeWireguardPort, portForwards } from '../../src/host/wireguard-ports.js';

const range = { first: 41642, last: 41644 };

describe("containers' WireGuard ports", () => {
  it('takes the next port after the newest endpoint\'s, none any endpoint holds; 41641 when the range is off or used up', () => {
    assert.equal(freeWireguardPort(range, []), 41642);
    assert.equal(freeWireguardPort(range, [{ wireguardPort: 41642 }, {}, { wireguardPort: 41644 }]), 41643, 'a record without one (before 0.4) holds none');
    assert.equal(freeWireguardPort(range, [41642, 41643, 41644].map((p) => ({ wireguardPort: p }))), 41641);
    assert.equal(freeWireguardPort(undefined, []), 41641);
  });

  it('reuses a port freed by Leave last, so no peer\'s old conntrack entry sends a new node\'s packets elsewhere', () => {
    // 41642 was freed a moment ago; 41643 is the newest endpoint's: the next is 41644, then 41642.
    const eps = [{ wireguardPort: 41643, createdAt: '2026-12-04T07:00:01Z' }];
    assert.equal(freeWireguardPort(range, eps), 41644);
    assert.equal(freeWireguardPort(range, [...eps, { wireguardPort: 41644, createdAt: '2026-12-04T07:00:02Z' }]), 41642, 'wraps around');
    assert.equal(freeWireguardPort(range, [{ wireguardPort: 41641, createdAt: '2026-12-04T07:00:03Z' }, ...eps]), 41644, 'a port outside the range says nothing about the range');
  });

  it('forwards the range ports of joined endpoints only, with valid values only', () => {
    const eps = [
      { address: '10.9.0.5', wireguardPort: 41643, joinedAt: 'x' },
      { address: '10.9.0.6', wireguardPort: 41642, joinedAt: 'x' },
      { address: '10.9.0.7', wireguardPort: 41644 },
      { address: '10.9.0.8', wireguardPort: 41641, joinedAt: 'x' },
      { address: '10.9.0.9 -j ACCEPT', wireguardPort: 41644, joinedAt: 'x' },
      { address: '10.9.0.10', wireguardPort: 41642.5, joinedAt: 'x' },
    ];
    assert.deepEqual(portForwards(range, eps), [{ address: '10.9.0.6', port: 41642 }, { address: '10.9.0.5', port: 41643 }]);
    assert.deepEqual(portForwards(undefined, eps), [], 'the range off: nothing is forwarded');
  });
});
