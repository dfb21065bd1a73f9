import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { interfaceConfigured, peerUp, prepareRoutesOnceConfigured } from '../../src/host/container-routes.js';
import { parseIpv4 } from '../../src/host/ipv4.js';
import { parseIfName } from '../../src/host/host-spec.js';
import type { NetnsPath } from '../../src/host/netns.js';
import type { Runner } from '../../src/util/exec.js';

const ADDR = parseIpv4('172.18.0.4')!;
const NETNS = '/run/docker/netns/abc' as NetnsPath;
// What `ip -batch` printed in a namespace (measured): the link before Docker set it up, then after.
const DOWN = '92: eth0@if93: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN group default qlen 1000 link-netnsid 0\n    inet 172.18.0.4/16 scope global eth0\n';
const UP = '92: eth0@if93: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default link-netnsid 0\n    inet 172.18.0.4/16 brd 172.18.255.255 scope global eth0\n';
const DEFAULT = 'default via 172.18.0.1 dev eth0 \n';

describe('container routes', () => {
  it('calls the interface configured only with the address on a link that is up and a default route', () => {
    assert.equal(interfaceConfigured('', ADDR), false, 'no link yet');
    assert.equal(interfaceConfigured(DOWN + DEFAULT, ADDR), false, 'link down');
    assert.equal(interfaceConfigured(UP, ADDR), false, 'no default route yet');
    assert.equal(interfaceConfigured(UP.replace('172.18.0.4/', '172.18.0.5/') + DEFAULT, ADDR), false, 'another address');
    assert.equal(interfaceConfigured(UP.replace('MULTICAST,UP,LOWER_UP', 'MULTICAST,LOWER_UP') + DEFAULT, ADDR), false, 'LOWER_UP alone is not UP');
    assert.equal(interfaceConfigured(UP + DEFAULT, ADDR), true);
    assert.equal(interfaceConfigured(UP + DEFAULT, undefined), true, 'without an address: a link up and a route');
  });

  it('asks again in the same process as the routes until Docker has configured the link, and stops when the endpoint leaves', async () => {
    const answers = ['', DOWN, UP, UP + DEFAULT];
    const inputs: string[] = [];
    const run: Runner = async (cmd, args, opts) => {
      assert.deepEqual([cmd, ...args], ['nsenter', `--net=${NETNS}`, 'ip', '-force', '-batch', '-']);
      inputs.push(opts?.input ?? '');
      return { code: 0, stdout: answers.shift() ?? UP + DEFAULT, stderr: '' };
    };
    const r = await prepareRoutesOnceConfigured(run, NETNS, ADDR, new AbortController().signal, { waitMs: 5_000 });
    assert.deepEqual(r, { configured: true, checks: 4 });
    assert.match(inputs[0]!, /^route replace unreachable 100\.64\.0\.0\/10 proto 211\n.*\naddr show to 172\.18\.0\.4\/32\nroute show default\n$/s);

    const ctl = new AbortController();
    let calls = 0;
    const never: Runner = async () => {
      if (++calls === 2) ctl.abort();
      return { code: 0, stdout: '', stderr: '' };
    };
    assert.deepEqual(await prepareRoutesOnceConfigured(never, NETNS, ADDR, ctl.signal, { waitMs: 5_000 }), { configured: false, checks: 2 });
    assert.deepEqual((await prepareRoutesOnceConfigured(never, NETNS, ADDR, new AbortController().signal, { waitMs: 60 })).configured, false, 'gives up at its bound');
  });

  it('fails when the IPv4 route cannot be made, and not for IPv6 being off', async () => {
    const failing = (stderr: string): Runner => async () => ({ code: 1, stdout: UP + DEFAULT, stderr });
    await assert.rejects(prepareRoutesOnceConfigured(failing('RTNETLINK answers: Operation not permitted\nCommand failed -:1'), NETNS, ADDR, new AbortController().signal), /ip route in the container/);
    assert.equal((await prepareRoutesOnceConfigured(failing('RTNETLINK answers: Permission denied\nCommand failed -:2'), NETNS, ADDR, new AbortController().signal)).configured, true);
  });

  it("waits for the host's end of the pair to say up (no process) before asking ip, and trusts ip alone when the link cannot be read", async () => {
    const states = ['0\n', '0\n', '1\n'];
    const paths: string[] = [];
    const read = async (p: string): Promise<string> => (paths.push(p), states.shift() ?? '1\n');
    let spawned = 0;
    const run: Runner = async () => (spawned++, { code: 0, stdout: UP + DEFAULT, stderr: '' });
    const r = await prepareRoutesOnceConfigured(run, NETNS, ADDR, new AbortController().signal, { peerUp: () => peerUp(parseIfName('tsh1234567890ab'), read) });
    assert.deepEqual([r, spawned, paths.length], [{ configured: true, checks: 1 }, 1, 3]);
    assert.equal(paths[0], '/sys/class/net/tsh1234567890ab/carrier');
    assert.equal(await peerUp(parseIfName('tsh1234567890ab'), async () => { throw new Error('ENOENT'); }), true);
    assert.equal(await peerUp(parseIfName('../../etc/x'), async () => '0'), true, 'a name that is not a link name is never read');
  });
});
