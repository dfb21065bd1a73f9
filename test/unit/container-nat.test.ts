/** host/container-nat.ts and host/dns-name.ts: the rules a container gets for its names. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { natRestoreInput, syncContainerNat } from '../../src/host/container-nat.js';
import { parseDnsSuffix, wireSuffixHex } from '../../src/host/dns-name.js';
import { parseIpv4, type Ipv4Address } from '../../src/host/ipv4.js';
import type { NetnsPath } from '../../src/host/netns.js';
import type { RunOptions, Runner } from '../../src/util/exec.js';

const ip = (s: string): Ipv4Address => parseIpv4(s)!;
const NETNS = '/run/docker/netns/0123456789ab' as NetnsPath;
/** What Docker's embedded resolver puts in every container's nat table. */
const DOCKER_NAT = ['*nat', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', ':DOCKER_OUTPUT - [0:0]', '-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT', '-A POSTROUTING -d 127.0.0.11/32 -j DOCKER_POSTROUTING', 'COMMIT'];

describe('MagicDNS suffixes', () => {
  it('takes DNS names only, lower-cased, without the root dot', () => {
    assert.equal(parseDnsSuffix('Tail1234.TS.net.'), 'tail1234.ts.net');
    for (const bad of ['', '.', 'a..b', '-a.b', 'a b', 'a.b"', 'x'.repeat(64) + '.net', 'ä.net', 'a.b\n-A OUTPUT']) assert.equal(parseDnsSuffix(bad), undefined, bad);
  });

  it('is matched in its wire form: length bytes before labels, the root byte after', () => {
    assert.equal(wireSuffixHex(parseDnsSuffix('tsl.test')!), '|0374736c047465737400|');
  });
});

describe('a container\'s name rules', () => {
  const peers = [{ docker: ip('172.18.0.3'), tailnet: ip('100.64.0.2') }];

  it('sends MagicDNS queries to quad-100 and a peer\'s Docker address to its tailnet address, jumps first', () => {
    const text = natRestoreInput({ magicDns: parseDnsSuffix('tsl.test'), peers, wireguardPort: 41650, wireguardPorts: { first: 41642, last: 41941 } }, DOCKER_NAT.join('\n'));
    const lines = text.split('\n');
    assert.ok(lines.includes('-A TSLINK-OUTPUT -d 127.0.0.11/32 -p udp --dport 53 -m string --algo bm --icase --hex-string "|0374736c047465737400|" -j DNAT --to-destination 100.100.100.100:53'));
    assert.ok(lines.includes('-A TSLINK-OUTPUT -d 172.18.0.3/32 -j DNAT --to-destination 100.64.0.2'));
    assert.ok(lines.includes('-A TSLINK-POSTROUTING -o tailscale0 -m conntrack --ctstate DNAT -j MASQUERADE'));
    // tailscaled's own packets and WireGuard between containers pass before any redirect.
    const firstDnat = lines.findIndex((l) => l.includes('DNAT'));
    assert.ok(lines.indexOf('-A TSLINK-OUTPUT -m mark --mark 0x80000/0xff0000 -j RETURN') < firstDnat);
    assert.ok(lines.indexOf('-A TSLINK-OUTPUT -p udp --sport 41650 -j RETURN') < firstDnat, 'the node\'s own WireGuard port');
    assert.ok(lines.indexOf('-A TSLINK-OUTPUT -p udp -m multiport --dports 41641,41642:41941 -j RETURN') < firstDnat, 'a peer\'s WireGuard port');
    for (const j of ['-I OUTPUT 1 -j TSLINK-OUTPUT', '-I POSTROUTING 1 -j TSLINK-POSTROUTING', '-I PREROUTING 1 -j TSLINK-PREROUTING']) assert.ok(lines.includes(j), j);
    assert.ok(lines.includes('-A TSLINK-PREROUTING ! -i lo -d 127.0.0.0/8 -j DROP'), 'route_localnet lets no 127/8 in from a link');
  });

  it('without MagicDNS: no DNS redirect', () => {
    assert.ok(!natRestoreInput({ peers, wireguardPort: 41650 }, '').includes('100.100.100.100'));
  });

  it('moves a jump that is no longer first, and removes duplicates', () => {
    const saved = ['*nat', '-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT', '-A OUTPUT -j TSLINK-OUTPUT', '-A POSTROUTING -j TSLINK-POSTROUTING', '-A POSTROUTING -j TSLINK-POSTROUTING', 'COMMIT',
      '*raw', '-A PREROUTING -j TSLINK-PREROUTING', 'COMMIT'].join('\n');
    const lines = natRestoreInput({ peers: [], wireguardPort: 41650 }, saved).split('\n');
    assert.deepEqual(lines.filter((l) => /^-[DI] /.test(l)), [
      '-D OUTPUT -j TSLINK-OUTPUT', '-I OUTPUT 1 -j TSLINK-OUTPUT',
      '-D POSTROUTING -j TSLINK-POSTROUTING', '-D POSTROUTING -j TSLINK-POSTROUTING', '-I POSTROUTING 1 -j TSLINK-POSTROUTING',
    ]);
    assert.ok(!lines.includes('-I PREROUTING 1 -j TSLINK-PREROUTING'), 'a jump already first alone is left');
  });

  it('writes in the container\'s namespace; a repair writes only when a jump moved', async () => {
    const calls: { args: readonly string[]; opts?: RunOptions }[] = [];
    let saved = DOCKER_NAT.join('\n');
    const run: Runner = async (_cmd, args, opts) => {
      calls.push({ args, opts });
      return { code: 0, stdout: args.includes('iptables-save') ? saved : '', stderr: '' };
    };
    assert.equal(await syncContainerNat(run, NETNS, { magicDns: parseDnsSuffix('tsl.test'), peers, wireguardPort: 41650 }, 'write', true), true);
    assert.ok(calls.every((c) => c.args[0] === `--net=${NETNS}`));
    assert.ok(calls.some((c) => c.args.join(' ').includes('route_localnet')), 'MagicDNS needs 127.0.0.1 routed to tailscale0');
    saved = ['*nat', '-A OUTPUT -j TSLINK-OUTPUT', '-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT', '-A POSTROUTING -j TSLINK-POSTROUTING', 'COMMIT', '*raw', '-A PREROUTING -j TSLINK-PREROUTING', 'COMMIT'].join('\n');
    calls.length = 0;
    assert.equal(await syncContainerNat(run, NETNS, { peers, wireguardPort: 41650 }, 'repair'), false);
    assert.equal(calls.length, 1, 'a repair that finds the jumps first only reads');
  });
});

