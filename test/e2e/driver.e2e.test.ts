import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  ENGINE, IMAGE, PluginProcess, docker, e2eSkipReason, mustDocker, sh,
  tslinkHostObjects, uniq, waitFor,
  DOUBLE_DIR,
} from './harness.js';

const skip = await e2eSkipReason();

/** An "outside host" in a namespace of our own, reached through the host's routing and NAT. */
const OUTSIDE_NS = 'tslink-e2e-outside';
const OUTSIDE_HOST_IP = '198.51.100.1';
const OUTSIDE_IP = '198.51.100.2';

async function makeOutside(): Promise<void> {
  await sh('ip', ['netns', 'del', OUTSIDE_NS]);
  await sh('ip', ['link', 'del', 'tslinke2eout']);
  for (const args of [
    ['netns', 'add', OUTSIDE_NS],
    ['link', 'add', 'tslinke2eout', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', OUTSIDE_NS],
    ['addr', 'add', `${OUTSIDE_HOST_IP}/24`, 'dev', 'tslinke2eout'],
    ['link', 'set', 'tslinke2eout', 'up'],
    ['-n', OUTSIDE_NS, 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'eth0'],
    ['-n', OUTSIDE_NS, 'link', 'set', 'eth0', 'up'],
    ['-n', OUTSIDE_NS, 'link', 'set', 'lo', 'up'],
  ]) {
    const r = await sh('ip', args);
    assert.equal(r.code, 0, `ip ${args.join(' ')}: ${r.stderr}`);
  }
}

async function removeOutside(): Promise<void> {
  await sh('ip', ['netns', 'del', OUTSIDE_NS]);
  await sh('ip', ['link', 'del', 'tslinke2eout']);
}

const NODE_TCP_ECHO_PEER = `
const s=require('net').createServer(c=>{c.end(c.remoteAddress+'\\n')});
s.listen(+process.argv[1],'0.0.0.0',()=>console.log('listening'));setTimeout(()=>process.exit(0),+process.argv[2]);`;
const NODE_TCP_CONNECT = `
const c=require('net').connect({host:process.argv[1],port:+process.argv[2],timeout:2000});let d='';
c.on('data',x=>d+=x);c.on('end',()=>{console.log('OK '+d.trim());process.exit(0)});
c.on('timeout',()=>{console.log('TIMEOUT');process.exit(3)});c.on('error',e=>{console.log('ERR '+e.code);process.exit(4)});`;
const NODE_UDP_RECV = `
const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>{console.log('GOT '+m+' from '+r.address);process.exit(0)});
s.bind(+process.argv[1],()=>console.log('bound'));setTimeout(()=>{console.log('NONE');process.exit(5)},+process.argv[2]);`;
const NODE_UDP_SEND = `
const s=require('dgram').createSocket('udp4');let n=0;const t=setInterval(()=>{s.send('ping',+process.argv[2],process.argv[1]);if(++n>20){clearInterval(t);s.close()}},100);`;

/** Starts a long-running node program in a namespace and resolves once it printed its ready word. */
function startInNs(nsArgs: string[], script: string, args: string[], ready: string): Promise<{ done: Promise<string> }> {
  return new Promise((resolve, reject) => {
    void import('node:child_process').then(({ spawn }) => {
      const child = spawn('nsenter', [...nsArgs, process.execPath, '-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      const done = new Promise<string>((r) => child.on('close', () => r(out)));
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes(ready)) resolve({ done });
      });
      child.on('error', reject);
      setTimeout(() => reject(new Error(`no '${ready}' from ${script.slice(0, 40)}: ${out}`)), 10_000);
    });
  });
}

async function netnsArgs(container: string): Promise<string[]> {
  const pid = await mustDocker('inspect', '-f', '{{.State.Pid}}', container);
  return [`--net=/proc/${pid}/ns/net`];
}

async function ipOf(container: string, net: string): Promise<string> {
  return mustDocker('inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, container);
}

describe(`driver on Docker ${ENGINE}`, { skip }, () => {
  const plugin = new PluginProcess(undefined, { TS_PATH: DOUBLE_DIR });
  const net = uniq('tsnet');
  const containers: string[] = [];
  const run = async (...args: string[]): Promise<string> => {
    const name = uniq('c');
    containers.push(name);
    await mustDocker('run', '-d', '--name', name, ...args);
    return name;
  };

  before(async () => {
    await plugin.start();
    await makeOutside();
  });

  after(async () => {
    if (containers.length) await docker('rm', '-f', ...containers);
    await docker('network', 'rm', net);
    await plugin.kill('SIGTERM');
    await removeOutside();
  });

  it('refuses bad network options with the grammar error, verbatim', async () => {
    const r = await docker('network', 'create', '-d', 'tslink', '--opt', 'tslink.autkey=x', uniq('badnet'));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /tslink: .*tslink\.autkey/);
    assert.match(r.stderr, /tslink\.authkey/, 'the error lists the known options');
    const mtu = await docker('network', 'create', '-d', 'tslink', '--opt', 'com.docker.network.driver.mtu=20', uniq('badnet'));
    assert.notEqual(mtu.code, 0);
    assert.match(mtu.stderr, /tslink: .*mtu.*68/i);
    const internal = await docker('network', 'create', '-d', 'tslink', '--internal', uniq('badnet'));
    assert.notEqual(internal.code, 0);
    assert.match(internal.stderr, /tslink: .*--internal/);
  });

  it('creates, inspects and keeps a network with an MTU', async () => {
    await mustDocker('network', 'create', '-d', 'tslink', '--subnet', '10.213.0.0/24', '--opt', 'com.docker.network.driver.mtu=1400', net);
    const driver = await mustDocker('network', 'inspect', '-f', '{{.Driver}}', net);
    assert.equal(driver, 'tslink');
    const files = readdirSync(join(plugin.dataDir, 'networks'));
    assert.equal(files.length, 1);
  });

  it('gives a container its IPAM address, the MTU and a default route via the gateway', async () => {
    const c = await run('--network', net, IMAGE, 'sleep', '600');
    const ip = await ipOf(c, net);
    assert.match(ip, /^10\.213\.0\.\d+$/);
    const addr = await mustDocker('exec', c, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0');
    assert.match(addr, new RegExp(`inet ${ip.replace(/\./g, '\\.')}/24`));
    const link = await mustDocker('exec', c, 'ip', '-o', 'link', 'show', 'dev', 'eth0');
    assert.match(link, /mtu 1400/);
    const routes = await mustDocker('exec', c, 'ip', 'route');
    assert.match(routes, /default via 10\.213\.0\.1 dev eth0/);
    const ifaces = await mustDocker('exec', c, 'ip', '-o', 'link');
    assert.doesNotMatch(ifaces, /eth1/, 'no docker_gwbridge interface was added');
  });

  it('NATs egress: an outside listener sees the host address', async () => {
    const c = await run('--network', net, IMAGE, 'sleep', '600');
    const server = await startInNs([`--net=/run/netns/${OUTSIDE_NS}`], NODE_TCP_ECHO_PEER, ['8080', '10000'], 'listening');
    const r = await sh('nsenter', [...(await netnsArgs(c)), process.execPath, '-e', NODE_TCP_CONNECT, OUTSIDE_IP, '8080']);
    assert.equal(r.stdout.trim(), `OK ${OUTSIDE_HOST_IP}`, `stdout=${r.stdout} stderr=${r.stderr}`);
    void server.done;
  });

  it('isolates containers: TCP between them fails, UDP 41641 passes', async () => {
    const a = await run('--network', net, IMAGE, 'sleep', '600');
    const b = await run('--network', net, IMAGE, 'sleep', '600');
    const bIp = await ipOf(b, net);
    const bNs = await netnsArgs(b);
    // Positive control: the listener answers the host, so a refusal below is the filter's doing.
    const tcp = await startInNs(bNs, NODE_TCP_ECHO_PEER, ['5000', '8000'], 'listening');
    const fromHost = await sh(process.execPath, ['-e', NODE_TCP_CONNECT, bIp, '5000']);
    assert.match(fromHost.stdout, /^OK /, `host reaches the listener: ${fromHost.stdout}`);
    const fromA = await sh('nsenter', [...(await netnsArgs(a)), process.execPath, '-e', NODE_TCP_CONNECT, bIp, '5000']);
    assert.match(fromA.stdout, /TIMEOUT|ERR/, `container-to-container TCP must fail: ${fromA.stdout}`);
    void tcp.done;
    const udp = await startInNs(bNs, NODE_UDP_RECV, ['41641', '5000'], 'bound');
    await sh('nsenter', [...(await netnsArgs(a)), process.execPath, '-e', NODE_UDP_SEND, bIp, '41641']);
    assert.match(await udp.done, /GOT ping from 10\.213\.0\./);
    const udpOther = await startInNs(bNs, NODE_UDP_RECV, ['41000', '2500'], 'bound');
    await sh('nsenter', [...(await netnsArgs(a)), process.execPath, '-e', NODE_UDP_SEND, bIp, '41000']);
    assert.match(await udpOther.done, /NONE/, 'UDP to another port is dropped');
  });

  it('connects a running container with docker network connect', async () => {
    const c = await run(IMAGE, 'sleep', '600');
    await mustDocker('network', 'connect', net, c);
    const ip = await ipOf(c, net);
    const addrs = await mustDocker('exec', c, 'ip', '-4', '-o', 'addr');
    assert.match(addrs, new RegExp(`inet ${ip.replace(/\./g, '\\.')}/24`));
    await mustDocker('network', 'disconnect', net, c);
    const after = await mustDocker('exec', c, 'ip', '-4', '-o', 'addr');
    assert.doesNotMatch(after, new RegExp(ip.replace(/\./g, '\\.')));
  });

  it('docker restart makes a new endpoint and cleans the old one', async () => {
    const c = await run('--network', net, IMAGE, 'sleep', '600');
    const before = await mustDocker('inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").EndpointID}}`, c);
    await mustDocker('restart', '-t', '0', c);
    const afterId = await mustDocker('inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").EndpointID}}`, c);
    assert.notEqual(before, afterId);
    const eps = readdirSync(join(plugin.dataDir, 'endpoints'));
    assert.ok(!eps.includes(`${before}.json`), 'old endpoint record removed');
    assert.ok(eps.includes(`${afterId}.json`), 'new endpoint recorded');
    const links = (await sh('ip', ['-o', 'link'])).stdout;
    assert.doesNotMatch(links, new RegExp(`tsh${before.slice(0, 12)}`), 'old host link removed');
    assert.match(links, new RegExp(`tsh${afterId.slice(0, 12)}`));
  });

  it('survives kill -9: a restarted plugin serves a new container on the existing network', async () => {
    await plugin.kill('SIGKILL');
    await plugin.start();
    const c = await run('--network', net, IMAGE, 'sleep', '600');
    assert.match(await ipOf(c, net), /^10\.213\.0\./);
    const routes = await mustDocker('exec', c, 'ip', 'route');
    assert.match(routes, /default via 10\.213\.0\.1/);
  });

  it('leaves no tslink link, route or rule after everything is removed', async () => {
    await mustDocker('rm', '-f', ...containers.splice(0));
    await mustDocker('network', 'rm', net);
    const left = await waitFor('host cleanup', async () => {
      const objs = await tslinkHostObjects();
      return objs.length === 0 ? ['clean'] : false;
    }, 5000).catch(async () => tslinkHostObjects());
    assert.deepEqual(left, ['clean'], `left behind: ${left.join('\n')}`);
    assert.deepEqual(readdirSync(join(plugin.dataDir, 'endpoints')), []);
    assert.deepEqual(readdirSync(join(plugin.dataDir, 'networks')), []);
  });
});

describe(`plugin without a default key on Docker ${ENGINE}`, { skip }, () => {
  const plugin = new PluginProcess(undefined, { TS_AUTHKEY: '' });
  before(() => plugin.start());
  after(() => plugin.kill('SIGTERM'));

  it('refuses a network with no auth key, naming both ways to give one', async () => {
    const r = await docker('network', 'create', '-d', 'tslink', uniq('nokey'));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /tslink: /);
    assert.match(r.stderr, /--opt tslink\.authkey=/);
    assert.match(r.stderr, /TS_AUTHKEY/);
  });
});
