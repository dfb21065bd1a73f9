/**
 * Docker Swarm tasks. Swarm expands Go templates (`{{.Task.Slot}}`) in a task's environment,
 * mounts and hostname, but not in its container labels (swarmkit template/expand.go; measured on
 * 20.10 and 28.5: `--container-label tslink.hostname=web-{{.Task.Slot}}` arrives literally). So
 * tslink expands the same placeholders in `tslink.*` label values itself, from the labels swarm
 * puts on every task container. Only the placeholders those labels can answer are accepted.
 */
import { MAX_VALUE } from './values.js';

/** What the `com.docker.swarm.*` labels of a task container say. */
export interface SwarmTask {
  serviceName: string;
  serviceId: string;
  taskId: string;
  nodeId: string;
  /** A replicated service's slot (1, 2, …); undefined for a global service (one task per node). */
  slot?: number;
}

const SWARM = {
  serviceName: 'com.docker.swarm.service.name',
  serviceId: 'com.docker.swarm.service.id',
  taskId: 'com.docker.swarm.task.id',
  taskName: 'com.docker.swarm.task.name',
  nodeId: 'com.docker.swarm.node.id',
} as const;

/**
 * The task a container runs, or undefined for a container swarm did not make. The slot is the
 * middle of the task name `<service>.<slot>.<task id>`; a global service's task names carry the
 * node ID there instead.
 */
export function swarmTask(labels: Readonly<Record<string, string>>): SwarmTask | undefined {
  const serviceName = labels[SWARM.serviceName];
  const serviceId = labels[SWARM.serviceId];
  const taskId = labels[SWARM.taskId];
  const taskName = labels[SWARM.taskName];
  const nodeId = labels[SWARM.nodeId];
  if (!serviceName || !serviceId || !taskId || !taskName || !nodeId) return undefined;
  const prefix = `${serviceName}.`;
  const suffix = `.${taskId}`;
  const middle = taskName.startsWith(prefix) && taskName.endsWith(suffix) ? taskName.slice(prefix.length, taskName.length - suffix.length) : '';
  const slot = /^[1-9][0-9]{0,8}$/.test(middle) ? Number(middle) : undefined;
  return { serviceName, serviceId, taskId, nodeId, ...(slot !== undefined ? { slot } : {}) };
}

const PLACEHOLDERS = ['.Service.Name', '.Service.ID', '.Task.Slot', '.Task.ID', '.Node.ID'] as const;
type Placeholder = (typeof PLACEHOLDERS)[number];
const SUPPORTED = PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ');
/** Longest label value that may hold templates: a hostname or a Service name is far shorter. */
const MAX_TEMPLATE_VALUE = 1024;

/**
 * The `{{ ... }}` pieces of a value in one left-to-right pass (linear time: a regular expression
 * here backtracked cubically on an unclosed `{{` followed by spaces, issue 22). Inner text holding
 * `{` or `}` is no template, as Go's would not be one either.
 */
function* templates(value: string): Generator<{ start: number; end: number; inner: string }> {
  let from = 0;
  for (;;) {
    const start = value.indexOf('{{', from);
    if (start < 0) return;
    const close = value.indexOf('}}', start + 2);
    if (close < 0) return;
    const body = value.slice(start + 2, close);
    const brace = Math.max(body.lastIndexOf('{'), body.lastIndexOf('}'));
    if (brace >= 0) {
      from = start + 2 + brace; // restart at the last brace inside: no position is scanned twice
      continue;
    }
    yield { start, end: close + 2, inner: body.replace(/^-/, '').replace(/-$/, '').trim() };
    from = close + 2;
  }
}

function valueOf(p: Placeholder, t: SwarmTask): string | undefined {
  switch (p) {
    case '.Service.Name':
      return t.serviceName;
    case '.Service.ID':
      return t.serviceId;
    case '.Task.Slot':
      return t.slot?.toString();
    case '.Task.ID':
      return t.taskId;
    case '.Node.ID':
      return t.nodeId;
  }
}

export type Expanded = { ok: true; value: string } | { ok: false; problem: string };

/**
 * Replaces the swarm placeholders in a label value; a value without `{{` is returned as it is.
 * `fit` adapts each substituted value to where it goes (a hostname cannot hold the `_` of a
 * stack's service name `demo_web`).
 */
export function expandTemplate(value: string, task: SwarmTask | undefined, fit: (v: string) => string = (v) => v): Expanded {
  if (!value.includes('{{')) return { ok: true, value };
  if (!task) {
    return { ok: false, problem: 'templates such as {{.Task.Slot}} are expanded only in the containers of swarm service tasks' };
  }
  if (value.length > MAX_TEMPLATE_VALUE) return { ok: false, problem: `a value with templates may be at most ${MAX_TEMPLATE_VALUE} characters long (it is ${value.length})` };
  let problem: string | undefined;
  let out = '';
  let at = 0;
  for (const t of templates(value)) {
    const whole = value.slice(t.start, t.end);
    out += value.slice(at, t.start);
    at = t.end;
    const p = PLACEHOLDERS.find((x) => x === t.inner);
    const v = p ? valueOf(p, task) : undefined;
    if (!p) problem ??= `${whole} is not a template tslink can expand from a task's labels; use ${SUPPORTED}`;
    else if (v === undefined) problem ??= `service ${task.serviceName} is global: its tasks have no slot; use {{.Node.ID}} to tell them apart`;
    out += v === undefined ? whole : fit(v);
    // Any label may claim a swarm service name of 64 KiB: what a template becomes is bounded too.
    if (out.length > MAX_VALUE) return { ok: false, problem: `the value expands to more than ${MAX_VALUE} characters in this task` };
  }
  out += value.slice(at);
  if (problem) return { ok: false, problem };
  if (out.includes('{{') || out.includes('}}')) return { ok: false, problem: `an unclosed template; use ${SUPPORTED}` };
  return { ok: true, value: out };
}

/** A task's hostname when it has no `tslink.hostname`: `<service>-<slot>` (global: `<service>-<node ID>`). */
export function taskHostname(t: SwarmTask, sanitize: (s: string) => string): string | undefined {
  const suffix = t.slot !== undefined ? String(t.slot) : sanitize(t.nodeId);
  // A node ID is 25 characters; a label claiming a longer one leaves no room (and slice must
  // not get a negative end, which counts from the end: a hostname over 63 characters).
  const room = 62 - suffix.length;
  if (room < 1) return undefined;
  const base = sanitize(t.serviceName).slice(0, room).replace(/-+$/, '');
  return base && suffix ? `${base}-${suffix}` : undefined;
}
