import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOCKER, ENGINE, IMAGE, ROOT, e2eSkipReason, sh, waitFor, stateDirOf } from './harness.js';

const skip = await e2eSkipReason();
const BED = join(ROOT, 'scripts/swarm-bed.sh');
const BASE = '/var/lib/tslink-swarm';
const NODES = [1, 2, 3] as const;
type NodeNo = (typeof NODES)[number];
const dataOf = (n: NodeNo): string => join(BASE, `n${n}`, 'plugins/tailscale');

/** docker against node N of the test bed. */
async function on(n: NodeNo, ...args: string[]): Promise<string> {
  const r = await sh(DOCKER, ['-H', `unix://${join(BASE, `n${n}`, 'docker.sock')}`, ...args], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`docker (node ${n}) ${args.join(' ')} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r.stdout.trim();
}

interface Task {
  id: string;
  slot: number;
  node: NodeNo;
  container: string;
}

/** The service's tasks that swarm reports running, with the node each runs on. */
async function runningTasks(service: string): Promise<Task[]> {
  const out = await on(1, 'service', 'ps', service, '--filter', 'desired-state=running', '--no-trunc', '--format', '{{.ID}} {{.Name}} {{.Node}} {{.CurrentState}}');
  const tasks: Task[] = [];
  for (const line of out.split('\n').filter(Boolean)) {
    const [id, name, node, state] = line.split(' ');
    if (state !== 'Running') continue;
    const n = Number(node!.replace('tsw-n', '')) as NodeNo;
    const container = await on(1, 'inspect', '-f', '{{.Status.ContainerStatus.ContainerID}}', id!);
    tasks.push({ id: id!, slot: Number(name!.split('.')[1]), node: n, container });
  }
  return tasks.sort((a, b) => a.slot - b.slot);
}

interface Status {
  container?: string;
  state?: string;
  hostname?: string;
}

/** What each node's plugin reports for its endpoints (status files in its data mount). */
function statuses(n: NodeNo): Status[] {
  const dir = join(dataOf(n), 'status');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Status);
}

/** The hostnames `tailscale up` was really given on node N for this hostname's state (the double's record). */
function upHostnames(n: NodeNo, hostname: string): string[] {
  const f = join(stateDirOf(dataOf(n), hostname), 'double-calls.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8').split('\n').filter(Boolean)
    .map((l) => (JSON.parse(l) as { argv: string[] }).argv)
    .filter((a) => a.includes('up'))
    .map((a) => a.find((x) => x.startsWith('--hostname='))?.slice('--hostname='.length) ?? '(none)');
}

/** tailscaled processes of node N's plugin: their /data is that node's data directory. */
async function daemonsOn(n: NodeNo): Promise<number> {
  const want = statSync(dataOf(n));
  let count = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (!argv.some((a) => /(^|\/)tailscaled$/.test(a))) continue;
      const data = statSync(`/proc/${pid}/root/data`);
      if (data.dev === want.dev && data.ino === want.ino) count++;
    } catch {
      // gone meanwhile
    }
  }
  return count;
}

/** tslink's objects in node N's network namespace: host-side links and iptables rules. */
async function hostObjects(n: NodeNo): Promise<string[]> {
  const found: string[] = [];
  const links = JSON.parse((await sh('ip', ['-n', `tsw-n${n}`, '-json', 'link', 'show'])).stdout || '[]') as { ifname: string; ifalias?: string }[];
  for (const l of links) if (/^ts[hc]/.test(l.ifname) || l.ifalias?.startsWith('tslink:')) found.push(`link ${l.ifname}`);
  for (const table of ['filter', 'nat']) {
    const rules = (await sh('ip', ['netns', 'exec', `tsw-n${n}`, 'iptables', '-w', '-t', table, '-S'])).stdout;
    for (const line of rules.split('\n')) if (/TSLINK|tslink/.test(line)) found.push(`iptables ${table}: ${line}`);
  }
  return found;
}

/** Tasks of every service (all on tslink networks here) that run on node N: each has one node. */
async function tasksOn(n: NodeNo): Promise<number> {
  const out = await on(1, 'node', 'ps', `tsw-n${n}`, '--filter', 'desired-state=running', '--format', '{{.CurrentState}}');
  return out.split('\n').filter((l) => l.startsWith('Running')).length;
}

/**
 * What every user of the service gets, checked on every node: each running task has a running
 * node named for its slot (the hostname `tailscale up` was given), one tailscaled per task, and
 * nothing on a node beyond the tasks running there (no stray daemon, status or link).
 */
async function assertServiceNodes(service: string, replicas: number, what: string, prefix = 'web'): Promise<Task[]> {
  const tasks = await waitFor(`${what}: ${replicas} tasks running with running nodes`, async () => {
    const t = await runningTasks(service);
    if (t.length !== replicas) return undefined;
    for (const task of t) {
      const s = statuses(task.node).find((x) => x.container === task.container);
      if (s?.state !== 'running') return undefined;
    }
    for (const n of NODES) {
      const here = await tasksOn(n);
      if (statuses(n).length !== here || (await daemonsOn(n)) !== here) return undefined;
    }
    return t;
  }, 120_000, 500);
  for (const task of tasks) {
    const s = statuses(task.node).find((x) => x.container === task.container)!;
    const hostname = `${prefix}-${task.slot}`;
    assert.equal(s.hostname, hostname, `${what}: slot ${task.slot}'s node has its slot's hostname`);
    assert.equal(upHostnames(task.node, hostname).at(-1), hostname, `${what}: tailscale up on tsw-n${task.node} was given ${hostname}`);
  }
  for (const n of NODES) {
    const here = await tasksOn(n);
    const links = (await hostObjects(n)).filter((o) => o.startsWith('link'));
    assert.equal(links.length, here, `${what}: tsw-n${n} has one link per task: ${links.join(', ')}`);
  }
  return tasks;
}

describe(`Docker Swarm services on a 3-node swarm, Docker ${ENGINE}`, { skip }, () => {
  before(async () => {
    const r = await sh(BED, ['up', ENGINE], { timeoutMs: 300_000 });
    process.stdout.write(`${r.stdout.trim()}\n`);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await sh(BED, ['down'], { timeoutMs: 120_000 });
  });

  it('places 6 replicas on all three nodes, each task a running node named for its slot', async () => {
    await on(1, 'network', 'create', '-d', 'tslink:latest', '--scope', 'swarm', 'swnet');
    await on(1, 'service', 'create', '-d', '--name', 'web', '--replicas', '6', '--network', 'swnet', '--stop-grace-period', '1s',
      '--container-label', 'tslink.hostname=web-{{.Task.Slot}}', '--container-label', 'tslink.tags=tag:swarm', IMAGE, 'sleep', '3600');
    const tasks = await assertServiceNodes('web', 6, 'created');
    assert.deepEqual([...new Set(tasks.map((t) => t.node))].sort(), [1, 2, 3], 'tasks on every node');
    assert.deepEqual(tasks.map((t) => t.slot), [1, 2, 3, 4, 5, 6]);
  });

  it('scales to 2 and back to 6 with nothing stray on any node', async () => {
    await on(1, 'service', 'scale', '-d', 'web=2');
    await assertServiceNodes('web', 2, 'scaled to 2');
    for (const n of NODES) {
      if ((await runningTasks('web')).some((t) => t.node === n)) continue;
      // The last task on a node gone, Docker removes the network there too: no host object stays.
      await waitFor(`tsw-n${n} clean`, async () => ((await hostObjects(n)).length === 0 ? true : undefined), 30_000, 250);
    }
    await on(1, 'service', 'scale', '-d', 'web=6');
    await assertServiceNodes('web', 6, 'scaled back to 6');
  });

  it('keeps every slot\'s hostname through a rolling update', async () => {
    const before = await runningTasks('web');
    await on(1, 'service', 'update', '-d', '--force', '--update-parallelism', '3', '--update-delay', '0s', 'web');
    await waitFor('every task replaced', async () => {
      const now = await runningTasks('web');
      return now.length === 6 && now.every((t) => !before.some((b) => b.id === t.id)) ? true : undefined;
    }, 180_000, 500);
    await assertServiceNodes('web', 6, 'after the rolling update');
  });

  it('moves a drained node\'s tasks, and they get nodes on their new hosts', async () => {
    const before = await runningTasks('web');
    const moving = before.filter((t) => t.node === 3);
    assert.ok(moving.length > 0, 'tsw-n3 runs tasks before the drain');
    await on(1, 'node', 'update', '--availability', 'drain', 'tsw-n3');
    const after = await assertServiceNodes('web', 6, 'after draining tsw-n3');
    assert.ok(after.every((t) => t.node !== 3), 'nothing runs on the drained node');
    for (const t of moving) {
      const moved = after.find((a) => a.slot === t.slot)!;
      assert.notEqual(moved.node, 3);
      assert.equal(upHostnames(moved.node, `web-${t.slot}`).at(-1), `web-${t.slot}`, `slot ${t.slot} logged in on tsw-n${moved.node} under its name`);
    }
    await waitFor('tsw-n3 clean', async () => ((await hostObjects(3)).length === 0 && (await daemonsOn(3)) === 0 ? true : undefined), 30_000, 250);
    await on(1, 'node', 'update', '--availability', 'active', 'tsw-n3');
  });

  it('takes network options from --config-from on every node (swarm never passes -o options to a node-local driver)', async () => {
    for (const n of NODES) await on(n, 'network', 'create', '--config-only', '-o', 'tslink.tags=tag:fromconfig', 'tsconf');
    await on(1, 'network', 'create', '-d', 'tslink:latest', '--scope', 'swarm', '--config-from', 'tsconf', 'cfgnet');
    await on(1, 'service', 'create', '-d', '--name', 'cfg', '--mode', 'global', '--network', 'cfgnet', '--stop-grace-period', '1s', IMAGE, 'sleep', '3600');
    // A global service: one task per node, each named for its node (no slot).
    const nodeIds = new Map<NodeNo, string>();
    for (const n of NODES) nodeIds.set(n, await on(1, 'node', 'inspect', '-f', '{{.ID}}', `tsw-n${n}`));
    for (const n of NODES) {
      const hostname = `cfg-${nodeIds.get(n)!}`;
      const upArgs = (): string[] => {
        const f = join(stateDirOf(dataOf(n), hostname), 'double-calls.jsonl');
        if (!existsSync(f)) return [];
        return readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { argv: string[] }).argv).filter((a) => a.includes('up')).at(-1) ?? [];
      };
      const up = await waitFor(`tsw-n${n}: node ${hostname} up`, async () => (upArgs().length ? upArgs() : undefined), 60_000, 250);
      assert.ok(up.includes('--advertise-tags=tag:fromconfig'), `the config network's tags reached tsw-n${n}: ${up.join(' ')}`);
    }
    await on(1, 'service', 'rm', 'cfg');
    await waitFor('cfg tasks gone', async () => ((await on(1, 'service', 'ls', '-q', '--filter', 'name=cfg')) === '' ? true : undefined), 30_000, 250);
    await waitFor('cfgnet removable', async () => ((await sh(DOCKER, ['-H', `unix://${join(BASE, 'n1', 'docker.sock')}`, 'network', 'rm', 'cfgnet'])).code === 0 ? true : undefined), 60_000, 1000);
    // Each node drops its copy of the swarm network a moment after the manager: then tsconf is free.
    for (const n of NODES) {
      await waitFor(`tsconf removable on tsw-n${n}`, async () => ((await sh(DOCKER, ['-H', `unix://${join(BASE, `n${n}`, 'docker.sock')}`, 'network', 'rm', 'tsconf'])).code === 0 ? true : undefined), 60_000, 500);
    }
  });

  it('deploys examples/stack.yaml with docker stack deploy: each task a node named for its service and slot', async () => {
    await on(1, 'network', 'create', '-d', 'tslink:latest', '--scope', 'swarm', 'tsnet');
    // The example as the README gives it, with this machine's image (no registry here).
    const override = join(mkdtempSync(join(tmpdir(), 'tslink-stack-')), 'override.yaml');
    writeFileSync(override, `version: "3.8"\nservices:\n  web:\n    image: ${IMAGE}\n    command: ["sleep", "3600"]\n    stop_grace_period: 1s\n`);
    await on(1, 'stack', 'deploy', '--resolve-image', 'never', '-c', join(ROOT, 'examples/stack.yaml'), '-c', override, 'demo');
    await assertServiceNodes('demo_web', 2, 'stack deployed', 'demo-web');
    await on(1, 'stack', 'rm', 'demo');
    await waitFor('stack tasks gone', async () => {
      for (const n of NODES) if ((await on(n, 'ps', '-aq', '--filter', 'label=com.docker.stack.namespace=demo')) !== '') return undefined;
      return true;
    }, 60_000, 500);
    await waitFor('tsnet removable', async () => ((await sh(DOCKER, ['-H', `unix://${join(BASE, 'n1', 'docker.sock')}`, 'network', 'rm', 'tsnet'])).code === 0 ? true : undefined), 60_000, 1000);
  });

  it('leaves no node, record, link or rule on any node once the service and network are removed', async () => {
    await on(1, 'service', 'rm', 'web');
    await waitFor('service gone', async () => {
      for (const n of NODES) if ((await on(n, 'ps', '-aq', '--filter', 'label=com.docker.swarm.service.name=web')) !== '') return undefined;
      return true;
    }, 60_000, 500);
    await on(1, 'network', 'rm', 'swnet');
    for (const n of NODES) {
      await waitFor(`tsw-n${n} has nothing of tslink`, async () => {
        const left = [...(await hostObjects(n)), ...statuses(n).map((s) => `status ${s.hostname}`)];
        const daemons = await daemonsOn(n);
        if (daemons) left.push(`${daemons} tailscaled`);
        return left.length === 0 ? true : undefined;
      }, 60_000, 250);
    }
  });
});
