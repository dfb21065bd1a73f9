/** What labels and network options share: their key prefix, and the grammars of DNS labels, tags, booleans, ports. */
import { MAX_PROBLEMS, show } from './messages.js';

/** Every label and option key tslink reads starts with this, in any letter case. */
export const LABEL_PREFIX = 'tslink.';

/**
 * Longest value of a `tslink.*` label or option. Docker takes far longer ones (a label value of
 * 64 KiB and more), but the longest tslink value a person writes (a tag list, a serve rule with
 * its options) is a few hundred characters; anything past this is refused before it is parsed,
 * so no hostile value costs more than this much work (issue 22).
 */
export const MAX_VALUE = 4096;

/** Why a value is too long to parse, or undefined. */
export function valueLengthProblem(value: string, kind: 'label' | 'option'): string | undefined {
  return value.length > MAX_VALUE ? `it is ${value.length} characters long; a tslink ${kind} value may be at most ${MAX_VALUE}` : undefined;
}

export const DNS_LABEL_RULE = '1-63 letters, digits and hyphens, not starting or ending with a hyphen';

/** Why `s` is not a DNS label, or undefined when it is one. */
export function dnsLabelProblem(s: string): string | undefined {
  if (s === '') return 'it is empty';
  if (s.length > 63) return `it is ${s.length} characters long, the limit is 63`;
  const bad = /[^A-Za-z0-9-]/.exec(s);
  if (bad) return `${show(bad[0])} is not allowed`;
  if (s.startsWith('-') || s.endsWith('-')) return 'it starts or ends with a hyphen';
  return undefined;
}

export const isDnsLabel = (s: string): boolean => dnsLabelProblem(s) === undefined;

const TAGS_RULE = 'write comma-separated tag:<name> items, each name a letter followed by letters, digits or hyphens, e.g. tag:web,tag:prod';

/** Why one item of a tag list is not a tag, or undefined when it is one. */
function tagProblem(item: string): string | undefined {
  if (item === '') return 'there is an empty item (two commas in a row, or a comma at an end)';
  if (!item.startsWith('tag:')) return `${show(item)} does not start with tag:`;
  const name = item.slice('tag:'.length);
  if (name === '') return `${show(item)} has no name after tag:`;
  if (!/^[A-Za-z]/.test(name)) return `${show(item)} does not start its name with a letter`;
  const bad = /[^A-Za-z0-9-]/.exec(name);
  if (bad) return `${show(item)} contains ${show(bad[0])}, which a tag name cannot hold`;
  return undefined;
}

/** A comma-separated tag list: items trimmed, deduplicated in order; one problem per bad item. */
export function parseTagList(value: string): { tags: string[]; problems: string[] } {
  if (value.trim() === '') return { tags: [], problems: ['it is empty; give at least one tag, or leave it out'] };
  const tags = new Set<string>();
  const problems: string[] = [];
  let untold = 0;
  for (const item of value.split(',').map((t) => t.trim())) {
    const problem = tagProblem(item);
    // Past MAX_PROBLEMS - 1 bad items (a flood of commas) the rest are only counted, in one more.
    if (problem && problems.length >= MAX_PROBLEMS - 1) untold++;
    else if (problem) problems.push(`${problem}; ${TAGS_RULE}`);
    else tags.add(item);
  }
  if (untold) problems.push(`and ${untold} more items are not tags either`);
  return { tags: [...tags], problems };
}

export function parseBool(value: string): boolean | undefined {
  const v = value.trim().toLowerCase();
  return v === 'true' ? true : v === 'false' ? false : undefined;
}

/** A port: 1-65535, decimal, no sign or leading zeros. */
export function parsePort(text: string): number | undefined {
  if (!/^[1-9][0-9]{0,4}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

/** A tag list for a parser's draft: the tags, or undefined after reporting each bad item. */
export function reportedTags(value: string, report: (problem: string) => void): string[] | undefined {
  const { tags, problems } = parseTagList(value);
  problems.forEach(report);
  return problems.length ? undefined : tags;
}
