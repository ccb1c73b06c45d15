/**
 * The variables whose names carry data: `SPACELIFT_METADATA_<key>` (tags sent at registration) and the
 * numbered `SPACELIFT_PRIVATEVCS_MAPPING_NAME_<n>` / `SPACELIFT_PRIVATEVCS_MAPPING_BASE_ENDPOINT_<n>`
 * pairs (VCS agent pool name -> base URL). Which variables exist is read from the environment's keys;
 * each becomes one slot — a variable name plus the parser for its value — so the configuration schema
 * reports every problem against the exact variable, including variables that are MISSING (the other
 * half of a pair, or a gap in the numbering).
 */
import { fail, ok, quote, type ParseResult } from "./parse-result.ts";
import { parseHttpUrl } from "./values.ts";

export interface Slot<T> {
  readonly variable: string;
  readonly parse: (raw: string | undefined) => ParseResult<T>;
}

export const METADATA_PREFIX = "SPACELIFT_METADATA_";
const VCS_PREFIX = "SPACELIFT_PRIVATEVCS_MAPPING_";
export const VCS_NAME = `${VCS_PREFIX}NAME_`;
export const VCS_ENDPOINT = `${VCS_PREFIX}BASE_ENDPOINT_`;

/** One slot per `SPACELIFT_METADATA_*` variable; the tag key is the name as written after the prefix. */
export function metadataSlots(keys: readonly string[]): Array<Slot<{ key: string; value: string }>> {
  return keys
    .filter((k) => k.startsWith(METADATA_PREFIX))
    .sort()
    .map((variable) => {
      const key = variable.slice(METADATA_PREFIX.length);
      return {
        variable,
        parse: (raw) => {
          if (key === "") return fail("has no tag key after the prefix", `e.g. ${METADATA_PREFIX}instance_id=i-0abc123`);
          if (raw === undefined || raw.trim() === "") {
            return fail("is empty (a tag needs a value)", `e.g. ${variable}=i-0abc123, or unset it`);
          }
          return ok({ key, value: raw });
        },
      };
    });
}

export interface VcsMapping {
  readonly name: string;
  readonly baseEndpoint: string;
}

export type VcsPart = { index: number; name: string } | { index: number; baseEndpoint: string };

const NUMBER = /^(?:0|[1-9][0-9]{0,3})$/;
const EXAMPLE = `e.g. ${VCS_NAME}0=github_pool with ${VCS_ENDPOINT}0=https://github.internal`;

/**
 * Slots for the VCS mappings. For every index 0..max both halves must exist; a missing half, a gap,
 * a non-numeric or unknown suffix and a non-http(s) endpoint are each reported on one variable.
 */
export function vcsSlots(keys: readonly string[]): Array<Slot<VcsPart>> {
  const slots: Array<Slot<VcsPart>> = [];
  const names = new Set<number>();
  const endpoints = new Set<number>();
  for (const variable of keys.filter((k) => k.startsWith(VCS_PREFIX)).sort()) {
    const isName = variable.startsWith(VCS_NAME);
    const isEndpoint = variable.startsWith(VCS_ENDPOINT);
    const suffix = variable.slice(isName ? VCS_NAME.length : isEndpoint ? VCS_ENDPOINT.length : VCS_PREFIX.length);
    if (!isName && !isEndpoint) {
      slots.push({ variable, parse: () => fail(`is not a VCS mapping variable (only ${VCS_NAME}<n> and ${VCS_ENDPOINT}<n>)`, EXAMPLE) });
    } else if (!NUMBER.test(suffix)) {
      slots.push({ variable, parse: () => fail(`ends in ${quote(suffix)}, which is not a mapping number 0, 1, 2, …`, EXAMPLE) });
    } else {
      (isName ? names : endpoints).add(Number(suffix));
    }
  }
  const max = Math.max(-1, ...names, ...endpoints);
  // Filled as the name slots are parsed (in index order), to report a name used twice.
  const seenNames = new Map<string, number>();
  for (let index = 0; index <= max; index++) {
    const hasName = names.has(index);
    const hasEndpoint = endpoints.has(index);
    if (!hasName && !hasEndpoint) {
      slots.push({
        variable: `${VCS_NAME}${index}`,
        parse: () =>
          fail(`is not set, but mapping ${max} is: mappings are numbered from 0 without gaps`, `renumber them 0, 1, 2, …; ${EXAMPLE}`),
      });
      continue;
    }
    slots.push({
      variable: `${VCS_NAME}${index}`,
      parse: (raw) => {
        if (raw === undefined) return fail(`is not set, but ${VCS_ENDPOINT}${index} is (every endpoint needs a name)`, EXAMPLE);
        if (raw.trim() === "") return fail("is empty (it names a VCS agent pool)", EXAMPLE);
        const earlier = seenNames.get(raw);
        if (earlier !== undefined && earlier !== index) return fail(`repeats the name of mapping ${earlier}`, "give each VCS agent pool one mapping");
        seenNames.set(raw, index);
        return ok({ index, name: raw });
      },
    });
    slots.push({
      variable: `${VCS_ENDPOINT}${index}`,
      parse: (raw) => {
        if (raw === undefined) return fail(`is not set, but ${VCS_NAME}${index} is (every name needs a base endpoint)`, EXAMPLE);
        const url = parseHttpUrl(raw);
        return url.ok ? ok({ index, baseEndpoint: url.value }) : fail(`${quote(raw)} is not an http(s) URL`, "e.g. https://github.internal or http://192.168.2.2");
      },
    });
  }
  return slots;
}

/** Pair the parsed halves back up, ordered by index. */
export function collectVcsMappings(parts: readonly VcsPart[]): VcsMapping[] {
  const byIndex = new Map<number, { name?: string; baseEndpoint?: string }>();
  for (const part of parts) {
    const entry = byIndex.get(part.index) ?? {};
    if ("name" in part) entry.name = part.name;
    else entry.baseEndpoint = part.baseEndpoint;
    byIndex.set(part.index, entry);
  }
  return [...byIndex.entries()]
    .sort(([a], [b]) => a - b)
    .flatMap(([, e]) => (e.name !== undefined && e.baseEndpoint !== undefined ? [{ name: e.name, baseEndpoint: e.baseEndpoint }] : []));
}
