/**
 * How every message about user input reads. Each starts with `tslink: `, names the label or
 * option, quotes the value given and says what would be valid, because Docker prints it verbatim
 * to the person who typed it. Parsers never stop at the first problem: they return all of them
 * (`errors`), and `message` joins them with `; `, capped so a hostile input cannot make a huge one.
 * Auth keys are secrets: no message quotes them, and text shaped like a Tailscale key (`tskey-…`)
 * is hidden wherever a value is quoted.
 */

export interface Failed {
  ok: false;
  /** Each problem, a complete `tslink: ` message of its own. */
  errors: string[];
  /** All errors joined with `; `: what Docker shows. */
  message: string;
}

/** `{ ok: true, <key>: value }` or every problem found. */
export type Parsed<K extends string, T> = ({ ok: true } & { [P in K]: T }) | Failed;

/** At most this many problems are told, in at most this many characters: input can be hostile. */
export const MAX_PROBLEMS = 20;
export const MAX_MESSAGE = 4096;

/** Joins problems into one message, the first MAX_PROBLEMS of them, cut at MAX_MESSAGE characters. */
export function joinProblems(errors: readonly string[]): string {
  const more = errors.length > MAX_PROBLEMS ? `; and ${errors.length - MAX_PROBLEMS} more problems` : '';
  const text = errors.slice(0, MAX_PROBLEMS).join('; ');
  const room = MAX_MESSAGE - more.length;
  return (text.length > room ? `${text.slice(0, room - 1)}…` : text) + more;
}

export const failed = (errors: string[]): Failed => ({ ok: false, errors: errors.slice(0, MAX_PROBLEMS), message: joinProblems(errors) });


export const HIDDEN = '(hidden)';
const MAX_SHOWN = 100;
/** Text shaped like a Tailscale key; hidden wherever a value is quoted. */
const KEY_SHAPED = /tskey-\S*/g;

/** A value as a message quotes it: JSON-quoted (so blanks and control characters show), key-shaped text hidden, cut when long. */
export function show(value: string): string {
  const safe = value.replace(KEY_SHAPED, `tskey-${HIDDEN}`);
  return JSON.stringify(safe.length > MAX_SHOWN ? `${safe.slice(0, MAX_SHOWN)}…` : safe);
}

/** A key as a message names it: as is when plain and short, quoted (and cut) otherwise. */
export function showKey(key: string): string {
  return key.length <= MAX_SHOWN && /^[\x21-\x7e]+$/.test(key) && !key.includes('tskey-') ? key : show(key);
}

/** A URL with any `user:password@` hidden. */
export const showUrl = (value: string): string => show(value.replace(/\/\/[^/?#]*@/, `//${HIDDEN}@`));

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** ` (did you mean X?)` for a close known key, else nothing. */
export function suggestion(key: string, known: readonly string[]): string {
  const k = key.toLowerCase();
  if (k.length > 64) return '';
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(k, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best ? ` (did you mean ${best}?)` : '';
}

/** Any value as text, without trusting it to convert itself (Docker sends strings, but be safe). */
export function textOf(raw: unknown): string {
  if (typeof raw === 'string') return raw;
  if (raw === null || raw === undefined || typeof raw === 'number' || typeof raw === 'boolean' || typeof raw === 'bigint') return String(raw);
  return `[${typeof raw}]`;
}

/** Reports problems about one key: `tslink: <kind> <key>=<value>: <problem>`. */
export type Report = (problem: string) => void;

export function reporter(errors: string[], kind: 'label' | 'option', key: string, shownValue: string): Report {
  return (problem) => errors.push(`tslink: ${kind} ${showKey(key)}=${shownValue}: ${problem}`);
}
