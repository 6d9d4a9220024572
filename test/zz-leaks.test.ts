// Runs last (tap runs files in order): nothing of any test may be left on the host.
// What is found is reported as a failure and then removed, so a leak is seen once
// and does not spill into the next run.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { stopByName } from '../src/commands/stop.js';
import { listStateRecords } from '../src/subhost/state.js';
import { DEFAULT_BOOT_LIST, DEFAULT_PKG_STATE, snapshotHost } from './helpers/host.js';

t.test('no subhost, namespace, veth, overlay mount or reaper is left', async (t) => {
  const records = listStateRecords().map((r) => r.record.name);
  t.same(records, [], 'no state record left');
  for (const name of records) {
    try { await stopByName(name, { timeoutSeconds: 2 }); } catch { /* cleaned */ }
  }
  const snap = snapshotHost();
  t.same(snap.netns, [], 'no network namespace left');
  for (const ns of snap.netns) spawnSync('ip', ['netns', 'del', ns]);
  const veths = spawnSync('ip', ['-o', 'link', 'show', 'type', 'veth'], { encoding: 'utf8' }).stdout
    .split('\n').filter(Boolean).map((l) => l.split(': ')[1]!.split('@')[0]!);
  t.same(veths, [], 'no veth left');
  for (const v of veths) spawnSync('ip', ['link', 'del', v]);
  const overlays = readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((l) => l.split(' ')[2] === 'overlay');
  t.same(overlays, [], 'no overlay mount left in the host mount namespace');
  const reapers = processesWhere('comm', (comm) => ['reaper', 'ovb-launch', 'dummy_service'].includes(comm.trim()));
  t.same(reapers, [], 'no reaper, monitor or dummy_service process left');
  // A subhost's cgroups (v2, and v1 where limits put them): empty leaves named as the
  // tests name subhosts (uniqueName), with no state record. Others' cgroups are not ours to judge.
  const running = new Set(listStateRecords().map((r) => r.record.name));
  const cgroups = snap.cgroups.filter((c) => {
    const name = path.basename(c);
    return /^[a-z][a-z0-9]{1,7}$/.test(name) && !running.has(name) && isEmptyLeaf(cgroupDir(c));
  });
  t.same(cgroups, [], 'no cgroup of a subhost left (v2, nor v1 memory, cpu, pids)');
  for (const c of cgroups) {
    try { rmdirSync(cgroupDir(c)); } catch { /* busy */ }
  }
  // overlay-pkg: no DU, unit, trash or operation in flight left in the default state
  // directory (tests use their own), no line of a test's DU in the default boot list.
  t.same(snap.pkgState.filter((p) => !['history.jsonl', 'journal.json', 'lock'].includes(p)), [], `nothing but history, journal and lock in ${DEFAULT_PKG_STATE}`);
  if (snap.pkgState.includes('journal.json')) {
    t.equal((JSON.parse(readFileSync(path.join(DEFAULT_PKG_STATE, 'journal.json'), 'utf8')) as { operation: unknown }).operation, null, 'no operation in flight there');
  }
  const stale = snap.bootList.filter((l) => !l.startsWith('#') && /\/units\/[^/]+\/[^/]+\.conf$/.test(l) && !existsSync(l.trim()));
  t.same(stale, [], `no line of a removed DU in ${DEFAULT_BOOT_LIST}`);
  // unprivileged subhosts: no id range still reserved (a leftover would shrink the pool for
  // good), and no user namespace file bound in the runtime directory
  t.same(snap.idRanges, [], 'no id range of an unprivileged subhost left reserved');
  const usernsFiles = snap.stateRecords.filter((f) => f.endsWith('.userns'));
  t.same(usernsFiles, [], 'no user namespace file left');
  // overlay-pkgd: no daemon a test started is still running
  const daemons = processesWhere('cmdline', (cmdline) => cmdline.split('\0').some((a) => a.endsWith('bin/overlay-pkgd.js') || a.endsWith('overlay-pkgd.mjs')));
  t.same(daemons, [], 'no overlay-pkgd left running');
  const loops = spawnSync('losetup', ['-a'], { encoding: 'utf8' }).stdout.trim();
  t.equal(loops, '', 'no loop device left');
});

/** The pids whose /proc/PID/`file` satisfies `test` (a process that ends meanwhile is not one). */
function processesWhere(file: 'comm' | 'cmdline', test: (text: string) => boolean): string[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return test(readFileSync(`/proc/${p}/${file}`, 'utf8')); } catch { return false; }
  });
}

/** snapshotHost lists v2 cgroups by name and v1 ones as `controller/NAME`. */
function cgroupDir(entry: string): string {
  return entry.includes('/') ? path.join('/sys/fs/cgroup', entry) : path.join('/sys/fs/cgroup/unified', entry);
}

/** A cgroup without processes or child cgroups. */
function isEmptyLeaf(dir: string): boolean {
  try {
    return readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').trim() === ''
      && readdirSync(dir, { withFileTypes: true }).every((d) => !d.isDirectory());
  } catch {
    return false;
  }
}
