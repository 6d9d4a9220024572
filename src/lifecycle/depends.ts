/**
 * Package relations (`Depends`, `Pre-Depends`, `Conflicts`, `Provides`) parsed with
 * Debian's syntax and checked as dpkg checks them, against what a DU can rely on
 * (LIFECYCLE.md "Contract details: Depends"): the packages of its own layer (the
 * package and its nested `packages/*.ipk`), the dpkg or opkg status database of its
 * EE's LOWER, and, for a hotfix, the installed DUs. Also the install order of nested
 * packages (dependencies first).
 *
 * Matching follows dpkg: a relation `name (op v)` is satisfied by a package `name`
 * whose version satisfies it (lib/dpkg/version.c order, {@link compareVersions}), or by
 * a package that `Provides: name (= w)` with `w` satisfying it; an unversioned
 * `Provides: name` satisfies only an unversioned relation. The obsolete operators `<`
 * and `>` mean `<=` and `>=`, as in dpkg and opkg. Architecture qualifiers (`:any`,
 * `:native`, `:amd64`) are accepted and not matched: a DU only ever sees packages of the
 * host's architecture or `all`, which install checks separately.
 */
import { open, realpath } from 'node:fs/promises';
import path from 'node:path';
import { OverlayBootError } from '../errors.js';
import { compareVersions, isValidVersion } from '../package/version.js';

/** A version operator, as dpkg writes it. */
export type RelationOperator = '<<' | '<=' | '=' | '>=' | '>>';

/** One relation: `name[:arch] [(op version)]`. */
export interface Relation {
  name: string;
  /** The architecture qualifier, kept for display only (see the module comment). */
  arch?: string;
  op?: RelationOperator;
  version?: string;
}

/** Alternatives (`a | b`): satisfied when any one is. A field is a list of these, all required. */
export type RelationGroup = Relation[];

/** Where the text came from, for errors (PKG_BAD_CONTROL names file, member and field). */
export interface RelationSource {
  /** The field name; default `Depends`. */
  field?: string;
  file?: string;
  member?: string;
}

/** A package that can satisfy a relation (TR-181 / control field names). */
export interface AvailablePackage {
  Package: string;
  Version: string;
  /** The Provides field as written, e.g. `httpd, www-server (= 2.4)`. */
  Provides?: string;
  /** Where it is, for messages: `layer`, `LOWER dpkg`, `LOWER opkg`, `DU web`. */
  source?: string;
}

/** What a DU's relations are checked against; every part optional. */
export interface DependsSources {
  /** (a) The packages in the DU's own layer: the package itself and its nested packages. */
  layer?: readonly AvailablePackage[];
  /** (b) The EE's LOWER, as {@link readLowerPackages} reads it. */
  lower?: readonly AvailablePackage[];
  /** (c) The installed DUs (a hotfix's Depends are checked against these alone). */
  dus?: readonly { Name: string; Version: string; Subhost?: string }[];
}

/** The result of {@link resolveDepends}. */
export interface DependsResult {
  /** True when every group is satisfied (TR-181 `Resolved`). */
  resolved: boolean;
  /**
   * Each unsatisfied group as written (normalised), e.g. `libc6 (>> 99)`, followed, when
   * packages of those names exist in other versions, by what was found:
   * `libc6 (>> 99) [found libc6 2.36-9 in LOWER dpkg]`.
   */
  missing: string[];
}

const NAME = '[A-Za-z0-9][A-Za-z0-9+._-]*';
const RELATION = new RegExp(`^(${NAME})(?::([A-Za-z0-9][A-Za-z0-9-]*))?(?:\\s*\\(\\s*(<<|<=|>=|>>|=|<|>)\\s*([^\\s()]+)\\s*\\))?$`);

function badRelation(src: RelationSource, message: string, cause?: unknown): OverlayBootError {
  return new OverlayBootError('PKG_BAD_CONTROL', message, { file: src.file, member: src.member ?? 'control', variable: src.field ?? 'Depends', cause });
}

/**
 * Parses a relation field (`Depends`, `Pre-Depends`, `Conflicts`, `Provides`): comma-
 * separated groups of `|` alternatives, each `name[:arch] [(op version)]`, white space
 * and continuation lines free. Empty entries between commas are skipped (opkg writes
 * them); anything else that is not a relation, including source-only syntax
 * (`[arch]`, `<profile>`) and an invalid version, is PKG_BAD_CONTROL naming the field.
 */
export function parseRelations(text: string, src: RelationSource = {}): RelationGroup[] {
  const field = src.field ?? 'Depends';
  const groups: RelationGroup[] = [];
  for (const entry of text.replace(/\s+/g, ' ').split(',')) {
    if (entry.trim() === '') continue;
    const group: RelationGroup = [];
    for (const alt of entry.split('|')) {
      const m = RELATION.exec(alt.trim());
      if (!m) throw badRelation(src, `${field}: ${JSON.stringify(alt.trim())} is not a relation (name[:arch] [(op version)])`);
      const [, name, arch, rawOp, version] = m;
      const relation: Relation = { name: name! };
      if (arch !== undefined) relation.arch = arch;
      if (rawOp !== undefined) {
        if (!isValidVersion(version!)) throw badRelation(src, `${field}: ${JSON.stringify(alt.trim())}: ${JSON.stringify(version)} is not a valid Debian version`);
        relation.op = rawOp === '<' ? '<=' : rawOp === '>' ? '>=' : (rawOp as RelationOperator);
        relation.version = version!;
      }
      group.push(relation);
    }
    groups.push(group);
  }
  return groups;
}

/** `name[:arch] (op version)`, as Debian writes a relation. */
export function formatRelation(r: Relation): string {
  const name = r.arch === undefined ? r.name : `${r.name}:${r.arch}`;
  return r.op === undefined ? name : `${name} (${r.op} ${r.version})`;
}

/** A group's alternatives joined with ` | `. */
export function formatGroup(group: readonly Relation[]): string {
  return group.map(formatRelation).join(' | ');
}

function versionSatisfies(have: string, op: RelationOperator, want: string): boolean {
  let c: number;
  try {
    c = compareVersions(have, want);
  } catch {
    return false; // a version that does not parse satisfies no versioned relation
  }
  switch (op) {
    case '<<': return c < 0;
    case '<=': return c <= 0;
    case '=': return c === 0;
    case '>=': return c >= 0;
    case '>>': return c > 0;
  }
}

/** One name a package answers to: its own (with its version) or a Provides entry. */
interface Candidate {
  name: string;
  /** Undefined for an unversioned Provides. */
  version?: string;
  pkg: AvailablePackage;
}

/** Indexes packages by the names they answer to. Unparsable Provides of LOWER are ignored. */
class PackageIndex {
  private readonly byName = new Map<string, Candidate[]>();

  constructor(packages: Iterable<AvailablePackage>) {
    for (const pkg of packages) {
      this.add({ name: pkg.Package, version: pkg.Version, pkg });
      if (!pkg.Provides) continue;
      let provided: RelationGroup[];
      try {
        provided = parseRelations(pkg.Provides, { field: 'Provides' });
      } catch {
        continue;
      }
      for (const r of provided.flat()) this.add({ name: r.name, version: r.op === '=' ? r.version : undefined, pkg });
    }
  }

  private add(c: Candidate): void {
    const list = this.byName.get(c.name);
    if (list) list.push(c);
    else this.byName.set(c.name, [c]);
  }

  /** The packages satisfying `r`, in the order they were given. */
  satisfying(r: Relation): AvailablePackage[] {
    const out: AvailablePackage[] = [];
    for (const c of this.byName.get(r.name) ?? []) {
      const ok = r.op === undefined || (c.version !== undefined && versionSatisfies(c.version, r.op, r.version!));
      if (ok && !out.includes(c.pkg)) out.push(c.pkg);
    }
    return out;
  }

  /** What answers to the name in another version, for messages. */
  near(r: Relation): string[] {
    return (this.byName.get(r.name) ?? []).map((c) => {
      const what = c.name === c.pkg.Package ? `${c.name} ${c.version}` : `${c.name}${c.version === undefined ? '' : ` ${c.version}`} (provided by ${c.pkg.Package})`;
      return c.pkg.source === undefined ? what : `${what} in ${c.pkg.source}`;
    });
  }
}

function indexOf(sources: DependsSources): PackageIndex {
  const dus: AvailablePackage[] = (sources.dus ?? []).map((d) => ({
    Package: d.Name, Version: d.Version, source: d.Subhost === undefined ? 'installed DUs' : `DU ${d.Subhost}`,
  }));
  return new PackageIndex([...(sources.layer ?? []), ...(sources.lower ?? []), ...dus]);
}

function groupsOf(field: string | readonly RelationGroup[] | undefined, src: RelationSource): readonly RelationGroup[] {
  if (field === undefined) return [];
  return typeof field === 'string' ? parseRelations(field, src) : field;
}

/**
 * Checks a `Depends` (or `Pre-Depends`) field, text or parsed, against `sources`.
 * Every group must have one alternative satisfied. Throws PKG_BAD_CONTROL only for
 * text that does not parse.
 */
export function resolveDepends(depends: string | readonly RelationGroup[] | undefined, sources: DependsSources, src: RelationSource = {}): DependsResult {
  const index = indexOf(sources);
  const missing: string[] = [];
  for (const group of groupsOf(depends, src)) {
    if (group.some((r) => index.satisfying(r).length > 0)) continue;
    const near = group.flatMap((r) => index.near(r));
    missing.push(near.length === 0 ? formatGroup(group) : `${formatGroup(group)} [found ${near.join(', ')}]`);
  }
  return { resolved: missing.length === 0, missing };
}

/**
 * The relations of a `Conflicts` field that something in `sources` satisfies, each as
 * `relation [with PACKAGE VERSION in SOURCE]`; empty when there is no conflict.
 * Packages named `self` (the package being installed, present in its own layer) are
 * not counted: as in dpkg, a package may conflict with what it provides itself.
 */
export function findConflicts(conflicts: string | readonly RelationGroup[] | undefined, sources: DependsSources, self?: string, src: RelationSource = {}): string[] {
  const index = indexOf(sources);
  const out: string[] = [];
  for (const r of groupsOf(conflicts, { field: 'Conflicts', ...src }).flat()) {
    const hits = index.satisfying(r).filter((p) => p.Package !== self);
    if (hits.length === 0) continue;
    const with_ = hits.map((p) => `${p.Package} ${p.Version}${p.source === undefined ? '' : ` in ${p.source}`}`);
    out.push(`${formatRelation(r)} [with ${with_.join(', ')}]`);
  }
  return out;
}

/** What {@link checkRelations} finds for one package. */
export interface RelationsReport extends DependsResult {
  /** Satisfied Conflicts relations (see {@link findConflicts}). */
  conflicts: string[];
}

/**
 * Checks a package's control fields (`Pre-Depends` and `Depends` must be satisfied,
 * `Conflicts` must not be): what install and update call with the package's fields.
 * `resolved` is the TR-181 `Resolved` (dependencies only); refuse the package when it is
 * false or `conflicts` is not empty ({@link relationsError} makes the error).
 */
export function checkRelations(fields: Record<string, string>, sources: DependsSources, src: Omit<RelationSource, 'field'> = {}): RelationsReport {
  const get = (name: string) => Object.entries(fields).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
  const pre = resolveDepends(get('Pre-Depends'), sources, { ...src, field: 'Pre-Depends' });
  const dep = resolveDepends(get('Depends'), sources, { ...src, field: 'Depends' });
  const self = get('Package');
  const conflicts = findConflicts(get('Conflicts'), sources, self, src);
  const missing = [...pre.missing, ...dep.missing];
  return { resolved: missing.length === 0, missing, conflicts };
}

/** PKG_DEPENDS_UNRESOLVED naming every missing and conflicting relation, or undefined when all is well. */
export function relationsError(report: RelationsReport, pkg: string, file?: string): OverlayBootError | undefined {
  if (report.resolved && report.conflicts.length === 0) return undefined;
  const parts: string[] = [];
  if (report.missing.length > 0) parts.push(`needs ${report.missing.join('; ')}`);
  if (report.conflicts.length > 0) parts.push(`conflicts with ${report.conflicts.join('; ')}`);
  return new OverlayBootError('PKG_DEPENDS_UNRESOLVED', `${pkg} ${parts.join(', and ')}`, { file, variable: report.missing.length > 0 ? 'Depends' : 'Conflicts' });
}

/** True when the package's `Tags` field holds `tag` (comma or space separated, as KerOS writes `Tags: hotfix`). */
export function hasTag(fields: Record<string, string>, tag: string): boolean {
  const tags = Object.entries(fields).find(([k]) => k.toLowerCase() === 'tags')?.[1] ?? '';
  return tags.split(/[\s,]+/).includes(tag);
}

/** The status databases of a LOWER root, relative to it, and how their packages are named in messages. */
export const STATUS_DATABASES = [
  { file: 'var/lib/dpkg/status', source: 'LOWER dpkg' },
  { file: 'usr/lib/opkg/status', source: 'LOWER opkg' },
  // Yocto's opkg keeps it here
  { file: 'var/lib/opkg/status', source: 'LOWER opkg' },
] as const;

/** Default cap on a status database read from LOWER: a big Debian system has a few MB. */
export const MAX_STATUS_SIZE = 64 * 1024 * 1024;

// dpkg counts a package in these states as present for dependencies (lib/dpkg/depcon.c)
const PRESENT = new Set(['installed', 'triggers-pending', 'triggers-awaited']);

/**
 * The installed packages of a dpkg or opkg status file: stanzas whose `Status` is
 * `WANT FLAG STATE` with STATE `installed` (or dpkg's `triggers-pending`/`-awaited`,
 * which dpkg also counts as present) and no `reinstreq` flag, so `install ok installed`,
 * opkg's `install user installed` and a held `hold ok installed` all count, and
 * `deinstall ok config-files` or `install ok half-installed` do not. Stanzas without
 * Package or Version are skipped. `source` is set on each, for messages.
 */
export function parseStatusDatabase(text: string, source?: string): AvailablePackage[] {
  const out: AvailablePackage[] = [];
  for (const stanza of text.split(/\n[ \t]*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const line of stanza.split('\n')) {
      if (/^[ \t]/.test(line)) {
        if (last !== undefined) fields.set(last, `${fields.get(last)} ${line.trim()}`);
        continue;
      }
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      last = line.slice(0, colon).trim().toLowerCase();
      fields.set(last, line.slice(colon + 1).trim());
    }
    const [, flags = '', state = ''] = (fields.get('status') ?? '').split(/\s+/);
    if (!PRESENT.has(state) || flags.split(',').includes('reinstreq')) continue;
    const pkg = fields.get('package');
    const version = fields.get('version');
    if (!pkg || !version) continue;
    const entry: AvailablePackage = { Package: pkg, Version: version };
    const provides = fields.get('provides');
    if (provides) entry.Provides = provides;
    if (source !== undefined) entry.source = source;
    out.push(entry);
  }
  return out;
}

/** Options of {@link readLowerPackages}. */
export interface ReadLowerOptions {
  /** Bytes; a larger status file is PKG_STATUS_UNREADABLE. Default {@link MAX_STATUS_SIZE}. */
  maxSize?: number;
}

/**
 * The installed packages of an EE's LOWER root: its dpkg status database and its opkg
 * one(s) ({@link STATUS_DATABASES}), each read at most once (by real path), absent ones
 * skipped. LOWER is the host administrator's and trusted, but a database is read only
 * when its real path stays inside LOWER's (so an absolute link in a LOWER that is not
 * `/` does not read the host's) and is a regular file of at most `maxSize` bytes;
 * otherwise PKG_STATUS_UNREADABLE names the file.
 */
export async function readLowerPackages(lower: string, opts: ReadLowerOptions = {}): Promise<AvailablePackage[]> {
  const maxSize = opts.maxSize ?? MAX_STATUS_SIZE;
  const unreadable = (file: string, why: string, cause?: unknown) =>
    new OverlayBootError('PKG_STATUS_UNREADABLE', `cannot read the status database: ${why}`, { file, cause });
  let root: string;
  try {
    root = await realpath(lower);
  } catch (e) {
    throw unreadable(lower, `LOWER: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, e);
  }
  const seen = new Set<string>();
  const out: AvailablePackage[] = [];
  for (const db of STATUS_DATABASES) {
    const file = path.join(lower, db.file);
    let real: string;
    try {
      real = await realpath(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw unreadable(file, code ?? (e as Error).message, e);
    }
    const rel = path.relative(root, real);
    if (rel.startsWith('..') || path.isAbsolute(rel)) throw unreadable(file, `it resolves to ${real}, outside LOWER`);
    if (seen.has(real)) continue;
    seen.add(real);
    out.push(...parseStatusDatabase(await readCapped(real, maxSize, (why, cause) => unreadable(file, why, cause)), db.source));
  }
  return out;
}

async function readCapped(file: string, maxSize: number, fail: (why: string, cause?: unknown) => OverlayBootError): Promise<string> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw fail((e as NodeJS.ErrnoException).code ?? (e as Error).message, e);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw fail('not a regular file');
    if (st.size > maxSize) throw fail(`${st.size} bytes, more than the cap of ${maxSize}`);
    // read one byte past the cap: a file that grew since stat is caught too
    const buf = Buffer.alloc(Math.min(st.size, maxSize) + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n === buf.length) {
        if (n > maxSize) throw fail(`more than the cap of ${maxSize} bytes`);
        break;
      }
    }
    return buf.subarray(0, n).toString('utf8');
  } catch (e) {
    if (e instanceof OverlayBootError) throw e;
    throw fail((e as NodeJS.ErrnoException).code ?? (e as Error).message, e);
  } finally {
    await fh.close();
  }
}

/** A nested package as the install order needs it: its control fields (and file, for messages). */
export interface NestedPackage {
  Package: string;
  Version: string;
  Depends?: string;
  'Pre-Depends'?: string;
  Provides?: string;
  /** The package file (e.g. `packages/b.ipk`), named in errors. */
  file?: string;
}

/**
 * The install order of nested packages: each after the nested packages it depends on
 * (`Pre-Depends` and `Depends`), otherwise in the order given. A group counts as a
 * dependency on the first nested package that satisfies its first satisfiable
 * alternative; relations no nested package satisfies are left to {@link resolveDepends}.
 * A cycle is PKG_DEPENDS_CYCLE naming it (`a -> b -> a`); dpkg would configure such a
 * set together, but maintainer scripts here run one package at a time.
 */
export function orderNestedPackages<T extends NestedPackage>(packages: readonly T[]): T[] {
  const index = new PackageIndex(packages);
  const position = new Map<AvailablePackage, number>(packages.map((p, i) => [p, i]));
  const edges = packages.map((p, i) => {
    const src = { file: p.file };
    const groups = [...parseRelations(p['Pre-Depends'] ?? '', { ...src, field: 'Pre-Depends' }), ...parseRelations(p.Depends ?? '', src)];
    const to: number[] = [];
    for (const group of groups) {
      for (const r of group) {
        const hit = index.satisfying(r).map((q) => position.get(q)!).filter((j) => j !== i);
        if (hit.length > 0) {
          to.push(hit[0]!);
          break;
        }
      }
    }
    return to;
  });
  // depth-first, without recursion: a hostile package may nest thousands in a chain
  const state = new Array<0 | 1 | 2>(packages.length).fill(0); // 0 new, 1 on the path, 2 placed
  const order: T[] = [];
  for (let root = 0; root < packages.length; root += 1) {
    if (state[root] !== 0) continue;
    const path: { node: number; next: number }[] = [{ node: root, next: 0 }];
    state[root] = 1;
    while (path.length > 0) {
      const top = path[path.length - 1]!;
      const j = edges[top.node]![top.next];
      if (j === undefined) {
        state[top.node] = 2;
        order.push(packages[top.node]!);
        path.pop();
        continue;
      }
      top.next += 1;
      if (state[j] === 2) continue;
      if (state[j] === 1) {
        const cycle = [...path.slice(path.findIndex((f) => f.node === j)).map((f) => f.node), j].map((k) => packages[k]!.Package);
        throw new OverlayBootError('PKG_DEPENDS_CYCLE', `the nested packages depend on each other in a cycle: ${cycle.join(' -> ')}`, {
          file: packages[j]!.file, variable: 'Depends',
        });
      }
      state[j] = 1;
      path.push({ node: j, next: 0 });
    }
  }
  return order;
}
