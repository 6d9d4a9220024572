// Hostile input (issue 7): a seeded, reproducible fuzzer over config files.
// Every case must end in a valid config (whose plan builds, or is refused with an
// OverlayBootError) or in a coded OverlayBootError naming the file; never another
// exception, never a hang, never a shell run except for a counted `!` value.
//
//   OVB_FUZZ_SEED=<n>     run seed (default below, printed in the output)
//   OVB_FUZZ_CASES=<n>    number of cases (default 10000)
//   OVB_FUZZ_ONLY=<i,j>   replay only these case indices of the seed
import t from 'tap';
import { chmodSync, chownSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readConfig } from '../../src/config/read.js';
import type { SubhostConfig } from '../../src/config/types.js';
import { buildBootPlan } from '../../src/plan/build.js';
import { checkConfig } from '../../src/commands/check.js';
import { ERROR_CODES, OverlayBootError } from '../../src/errors.js';
import { buildWorld } from '../fixtures/fuzz/world.js';
import { CaseGenerator, regressionCases, type FuzzCase } from '../fixtures/fuzz/generate.js';

const DEFAULT_SEED = 0x0b007ed;
const SEED = (process.env.OVB_FUZZ_SEED ? Number(process.env.OVB_FUZZ_SEED) : DEFAULT_SEED) >>> 0;
const CASES = process.env.OVB_FUZZ_CASES ? Number(process.env.OVB_FUZZ_CASES) : 10_000;
const ONLY = process.env.OVB_FUZZ_ONLY?.split(',').filter(Boolean).map(Number);
/** Short, so the few `!` commands that sleep cost little. */
const BANG_TIMEOUT_MS = 250;
/** A case taking longer than this is a hang. */
const CASE_LIMIT_MS = 15_000;
const MAX_REPORTED = 25;

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,11}$/;
const ROOT_VARIANTS = new Set(['premounted', 'bind', 'overlay']);

t.test('config fuzzer: hostile config files', async (t) => {
  const started = Date.now();
  const world = buildWorld();
  t.teardown(() => world.cleanup());
  const gen = new CaseGenerator(world);
  const indices = ONLY ?? Array.from({ length: CASES }, (_, i) => i);
  t.comment(`fuzz seed ${SEED} (replay: OVB_FUZZ_SEED=${SEED} OVB_FUZZ_CASES=${CASES}; one case: OVB_FUZZ_ONLY=<index>)`);

  // Control: a counted `!` value carrying the payload does create the marker, so
  // the check after every case below can see a shell run.
  const control = path.join(world.root, 'cfg', 'control.conf');
  writeFileSync(control, `BASE=../sub\nLOG=!touch ${world.marker}; echo /tmp/ovbfz-control.log\n`, { mode: 0o644 });
  await readConfig(control, { checkOwnership: false, bangTimeoutMs: 5000 }).catch(() => undefined);
  t.ok(existsSync(world.marker), 'control: a counted ! value creates the marker');
  rmSync(world.marker, { force: true });

  const outcomes = new Map<string, number>();
  const listed = new Map<string, number>();
  const kinds = new Map<string, number>();
  const kindMs = new Map<string, number>();
  const failures: string[] = [];
  let bangCases = 0;
  let ownershipCases = 0;
  let checkCases = 0;
  let plans = 0;
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

  const regressions = ONLY ? [] : regressionCases(world);
  function* cases(): Generator<FuzzCase> {
    yield* regressions;
    for (const index of indices) yield gen.make(SEED, index);
  }
  for (const c of cases()) {
    if (c.index >= 0) bump(kinds, c.kind);
    if (c.bang) bangCases += 1;
    if (c.checkOwnership) ownershipCases += 1;
    write(c);
    const problems: string[] = [];
    const t0 = Date.now();
    const result = await bounded(runCase(c, world.root, problems), CASE_LIMIT_MS);
    if (result === 'hang') problems.push(`no answer within ${CASE_LIMIT_MS} ms`);
    else {
      if (c.index < 0) t.comment(`${c.kind}: ${result.outcome}`);
      else bump(outcomes, result.outcome);
      if (c.index >= 0) for (const code of result.listed) bump(listed, code);
      if (result.planned) plans += 1;
      if (result.checked) checkCases += 1;
    }
    const key = `${c.kind}${c.bang ? '+!' : ''}`;
    kindMs.set(key, (kindMs.get(key) ?? 0) + Date.now() - t0);
    if (existsSync(world.marker)) {
      problems.push(`a shell ran a payload: ${world.marker} exists`);
      rmSync(world.marker, { force: true });
    }
    if (problems.length > 0) failures.push(describeCase(c, problems));
  }

  for (const f of failures.slice(0, MAX_REPORTED)) t.fail(f);
  if (failures.length > MAX_REPORTED) t.comment(`... and ${failures.length - MAX_REPORTED} more failing cases`);
  t.equal(failures.length, 0, `${indices.length} cases, none failing`);
  t.notOk(existsSync(world.marker), 'no payload ever ran');

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
  t.comment(`fuzz seed ${SEED}: ${indices.length} cases in ${seconds} s`);
  t.comment(`outcomes: ${sorted(outcomes)}`);
  t.comment(`codes listed inside CONFIG_INVALID: ${sorted(listed)}`);
  t.comment(`valid configs planned: ${plans}; checkConfig runs: ${checkCases}; cases with '!' values: ${bangCases}; with checkOwnership: ${ownershipCases}`);
  t.comment(`generators: ${sorted(kinds)}`);
  t.comment(`milliseconds by generator: ${sorted(kindMs)}`);
});

/** Writes the case's config file with its mode and owner. */
function write(c: FuzzCase): void {
  if (c.writePath === undefined) return;
  writeFileSync(c.writePath, c.text);
  chmodSync(c.writePath, c.mode);
  chownSync(c.writePath, c.uid, 0);
}

interface CaseResult {
  /** 'valid', 'valid, plan refused: CODE', or the error code. */
  outcome: string;
  planned: boolean;
  checked: boolean;
  /** Codes of the errors a CONFIG_INVALID lists. */
  listed: string[];
}

async function runCase(c: FuzzCase, cwd: string, problems: string[]): Promise<CaseResult> {
  const options = {
    cwd,
    checkOwnership: c.checkOwnership,
    bangTimeoutMs: BANG_TIMEOUT_MS,
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
  };
  let config: SubhostConfig | undefined;
  let outcome: string;
  let listed: string[] = [];
  try {
    config = await readConfig(c.confPath, options);
    outcome = 'valid';
  } catch (e) {
    problems.push(...errorProblems(e, 'readConfig'));
    outcome = e instanceof OverlayBootError ? e.code : 'NOT-AN-OverlayBootError';
    if (e instanceof OverlayBootError && e.code === 'CONFIG_INVALID') listed = (e.errors ?? []).map((x) => String(x?.code));
  }
  let planned = false;
  if (config !== undefined) {
    problems.push(...configProblems(config));
    try {
      const plan = buildBootPlan(config, { reaperPath: '/nonexistent/reaper', cgroupRoot: '/sys/fs/cgroup' });
      planned = true;
      for (const step of plan.steps) {
        if (typeof step.id !== 'string' || typeof step.title !== 'string') problems.push(`plan step without id or title: ${JSON.stringify(step.id)}`);
        for (const op of [...step.native, ...step.undo]) {
          for (const arg of op.args) {
            if (typeof arg !== 'string') problems.push(`plan step ${step.id}: op ${op.op} has a non-string argument ${String(arg)}`);
            else if (arg.includes('\0')) problems.push(`plan step ${step.id}: op ${op.op} has an argument with a NUL byte`);
          }
        }
      }
      for (const [k, v] of Object.entries(plan.env)) if (typeof v !== 'string' || v.includes('\0')) problems.push(`plan env ${k} is ${JSON.stringify(v)}`);
    } catch (e) {
      problems.push(...errorProblems(e, 'buildBootPlan', false));
      outcome = `valid, plan refused: ${e instanceof OverlayBootError ? e.code : 'NOT-AN-OverlayBootError'}`;
    }
  }
  let checked = false;
  if (c.useCheck) {
    checked = true;
    try {
      await checkConfig(c.confPath, options);
    } catch (e) {
      problems.push(...errorProblems(e, 'checkConfig', false));
    }
  }
  return { outcome, planned, checked, listed };
}

/** What is wrong with a thrown value: anything but a coded OverlayBootError naming the file. */
function errorProblems(e: unknown, where: string, needFile = true): string[] {
  if (!(e instanceof OverlayBootError)) {
    return [`${where} threw ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`];
  }
  const problems: string[] = [];
  const check = (err: OverlayBootError, label: string) => {
    if (!(err.code in ERROR_CODES)) problems.push(`${where}: ${label} has unknown code ${err.code}`);
    if (needFile && typeof err.file !== 'string') problems.push(`${where}: ${label} ${err.code} has no file: ${err.message}`);
    if (typeof err.message !== 'string' || err.message === '') problems.push(`${where}: ${label} ${err.code} has no message`);
  };
  check(e, 'error');
  if (e.code === 'CONFIG_INVALID') {
    if (!Array.isArray(e.errors) || e.errors.length < 2) problems.push(`${where}: CONFIG_INVALID lists ${e.errors?.length ?? 'no'} errors`);
    for (const [i, sub] of ((e.errors ?? []) as unknown[]).entries()) {
      if (!(sub instanceof OverlayBootError)) problems.push(`${where}: CONFIG_INVALID error ${i} is ${sub instanceof Error ? `${(sub as Error).name}: ${(sub as Error).message}\n${(sub as Error).stack}` : String(sub)}`);
      else check(sub, `listed error ${i}`);
    }
  }
  return problems;
}

/** Types and basic invariants of a config readConfig accepted. */
function configProblems(c: SubhostConfig): string[] {
  const p: string[] = [];
  const abs = (label: string, v: unknown) => {
    if (typeof v !== 'string' || !path.isAbsolute(v)) p.push(`${label} is not an absolute path: ${JSON.stringify(v)}`);
  };
  if (typeof c.name !== 'string' || !NAME_RE.test(c.name)) p.push(`name ${JSON.stringify(c.name)} is not a subhost name`);
  abs('file', c.file);
  abs('base', c.base);
  abs('live', c.live);
  abs('work', c.work);
  abs('lower', c.lower);
  abs('log', c.log);
  if ((c.upper === undefined) === (c.upperProgram === undefined)) p.push(`exactly one of upper and upperProgram must be set: ${c.upper} / ${c.upperProgram}`);
  if (c.upper !== undefined) abs('upper', c.upper);
  if (c.upperProgram !== undefined) abs('upperProgram', c.upperProgram);
  if (!ROOT_VARIANTS.has(c.rootVariant)) p.push(`rootVariant ${JSON.stringify(c.rootVariant)}`);
  if (c.rootVariant === 'premounted' && c.live !== c.lower) p.push('premounted but LIVE is not LOWER');
  if (c.rootVariant === 'bind' && c.upper !== c.lower) p.push('bind but UPPER is not LOWER');
  if (!Array.isArray(c.cables)) p.push('cables is not an array');
  const hostIfs = new Set<string>();
  for (const cable of c.cables ?? []) {
    for (const ifname of [cable.hostIf, cable.subhostIf, cable.bridge].filter((x) => x !== undefined)) {
      if (typeof ifname !== 'string' || Buffer.byteLength(ifname) > 15 || ifname === '' || /[/:\s]/.test(ifname)) {
        p.push(`cable ${JSON.stringify(cable.spec)}: bad interface name ${JSON.stringify(ifname)}`);
      }
    }
    if (hostIfs.has(cable.hostIf)) p.push(`cable ${cable.hostIf} repeated`);
    hostIfs.add(cable.hostIf);
    if (cable.kind === 'veth') {
      if (cable.mac !== undefined && (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(cable.mac) || (parseInt(cable.mac.slice(0, 2), 16) & 1) === 1 || cable.mac === '00:00:00:00:00:00')) {
        p.push(`cable MAC ${cable.mac}`);
      }
      if (!cable.hostIf.startsWith(c.name)) p.push(`cable ${cable.hostIf} does not start with NAME`);
    } else if (cable.kind === 'vlan') {
      if (!Number.isInteger(cable.vlan) || cable.vlan < 1 || cable.vlan > 4095) p.push(`VLAN tag ${cable.vlan}`);
    } else p.push(`cable kind ${JSON.stringify((cable as { kind: unknown }).kind)}`);
  }
  if (!Array.isArray(c.start) || c.start.some((s) => typeof s !== 'string' || s === '' || /\s/.test(s))) p.push(`start ${JSON.stringify(c.start)}`);
  if (c.ramSize !== undefined && !/^[0-9]+[kKmMgG%]?$/.test(c.ramSize)) p.push(`ramSize ${JSON.stringify(c.ramSize)}`);
  if (!Number.isInteger(c.stopTimeout) || c.stopTimeout < 1 || c.stopTimeout > 3600) p.push(`stopTimeout ${c.stopTimeout}`);
  if (!Array.isArray(c.run) || c.run.some((r) => typeof r !== 'string' || r === '')) p.push(`run ${JSON.stringify(c.run)}`);
  for (const key of ['premount', 'postmount', 'init'] as const) {
    if (c[key] !== undefined && (typeof c[key] !== 'string' || c[key] === '')) p.push(`${key} ${JSON.stringify(c[key])}`);
  }
  for (const s of c.shares ?? []) {
    abs('share host path', s.hostPath);
    abs('share subhost path', s.subhostPath);
    if (s.subhostPath === '/') p.push('a share covers the root');
    if (typeof s.isDirectory !== 'boolean') p.push('share isDirectory');
  }
  if (!Array.isArray(c.warnings)) p.push('warnings is not an array');
  return p;
}

async function bounded<T>(p: Promise<T>, ms: number): Promise<T | 'hang'> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<'hang'>((resolve) => {
    timer = setTimeout(() => resolve('hang'), ms);
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

function describeCase(c: FuzzCase, problems: string[]): string {
  const text = c.text.length > 400 ? `${c.text.subarray(0, 400).toString('latin1')}... (${c.text.length} bytes)` : c.text.toString('latin1');
  return [
    `case ${c.index} (replay: OVB_FUZZ_SEED=${SEED} OVB_FUZZ_ONLY=${c.index}) kind ${c.kind}, location ${c.location}, file ${c.confPath}, checkOwnership ${c.checkOwnership}`,
    ...problems.map((x) => `  - ${x}`),
    `  text: ${JSON.stringify(text)}`,
  ].join('\n');
}
