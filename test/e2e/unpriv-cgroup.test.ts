// PRIVILEGED=no (issue 16): the subhost's v2 cgroup is delegated to its root, in a cgroup
// namespace of its own, while MEMORY_MAX, CPU_MAX and PIDS_MAX stay the host's to set.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { boot } from '../../src/commands/boot.js';
import { checkConfig } from '../../src/commands/check.js';
import { enterArgv } from '../../src/commands/enter.js';
import { stop } from '../../src/commands/stop.js';
import { findCgroup2Root, readCgroupLayout } from '../../src/host/cgroup.js';
import { findNative } from '../../src/subhost/native.js';
import { processId } from '../../src/subhost/process.js';
import { readStateRecord, statePath } from '../../src/subhost/state.js';
import { makeSubhost, subhostTest, uniqueName } from '../helpers/subhost.js';

/** A command inside the subhost as overlay-go runs it; its status and output. */
function inside(pid1: number, script: string): { status: number; out: string } {
  const argv = enterArgv(findNative().launcher, processId(pid1)!, ['/bin/sh', '-c', script]);
  try {
    return { status: 0, out: execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (e) {
    const err = e as { status?: number; stdout?: string };
    return { status: err.status ?? -1, out: err.stdout ?? '' };
  }
}

/** The limit files the boot wrote (v2 or v1, as this host has the controllers). */
function limitFiles(name: string): string[] {
  const layout = readCgroupLayout();
  const files: string[] = [];
  const v2 = (c: string) => layout.v2Root && layout.v2Enabled.includes(c);
  files.push(v2('pids') ? path.join(layout.v2Root!, name, 'pids.max') : path.join(layout.v1.pids ?? '/nonexistent', name, 'pids.max'));
  files.push(v2('memory') ? path.join(layout.v2Root!, name, 'memory.max') : path.join(layout.v1.memory ?? '/nonexistent', name, 'memory.limit_in_bytes'));
  return files.filter((f) => existsSync(f));
}

const v2root = findCgroup2Root();
const name = uniqueName('cg');
subhostTest(t, 'an unprivileged subhost manages its own cgroups, not its limits', [name], async (t) => {
  if (!v2root) {
    t.comment('no cgroup v2 here: nothing to delegate');
    return;
  }
  const sh = makeSubhost(t, name, ['START=none', 'CABLES=', 'PRIVILEGED=no', 'PIDS_MAX=64', 'MEMORY_MAX=128M']);
  const { plan } = await checkConfig(sh.conf);
  const cgroupStep = plan.steps.find((s) => s.id === 'cgroup')!;
  t.match(cgroupStep.native.map((o) => o.op), ['cgroup', 'cgroup-delegate'], '--check shows the delegation');
  t.match(cgroupStep.title, /delegated to its root/);

  const r = await boot(sh.conf);
  const base = readStateRecord(statePath(name))!.idmap!.base;
  const dir = path.join(v2root, name);
  for (const f of ['.', 'cgroup.procs', 'cgroup.threads', 'cgroup.subtree_control']) {
    t.equal(statSync(path.join(dir, f)).uid, base, `${f} of its v2 cgroup is its root's`);
  }
  const limits = limitFiles(name);
  t.equal(limits.length, 2, `the limits are set (${limits.join(', ')})`);
  const values = limits.map((f) => readFileSync(f, 'utf8'));
  t.equal(values[0]!.trim(), '64', 'PIDS_MAX is in place');
  for (const f of limits) t.equal(statSync(f).uid, 0, `${f} stays the host root's`);

  t.equal(inside(r.pid1, 'grep "^0::" /proc/1/cgroup').out.trim(), '0::/', 'its cgroup is the root of its cgroup namespace');
  t.match(inside(r.pid1, 'grep " /sys/fs/cgroup " /proc/self/mountinfo').out, /cgroup2/, 'and mounted on /sys/fs/cgroup');
  const made = inside(r.pid1, 'mkdir /sys/fs/cgroup/app && echo 1 > /sys/fs/cgroup/app/cgroup.procs && grep "^0::" /proc/1/cgroup');
  t.same(made, { status: 0, out: '0::/app\n' }, 'root inside makes a child cgroup and moves its init into it');
  t.ok(readFileSync(path.join(dir, 'app/cgroup.procs'), 'utf8').split('\n').includes(String(r.pid1)), 'the host sees it there');

  // Every limit file it can see (the v2 ones of its cgroup: cgroup.max.*, and *.max of enabled controllers) refuses it.
  const raise = inside(r.pid1, 'n=0; for f in /sys/fs/cgroup/*.max /sys/fs/cgroup/cgroup.max.*; do [ -e "$f" ] || continue; n=$((n+1)); '
    + 'if (echo max > "$f") 2>/dev/null; then echo "raised $f"; fi; done; echo "tried $n"');
  t.match(raise.out, /^tried [1-9]/m, 'it sees limit files of its cgroup');
  t.notMatch(raise.out, /raised/, 'and cannot write one');
  t.not(inside(r.pid1, 'mkdir -p /tmp/v1 && mount -t cgroup -o pids cgroup /tmp/v1').status, 0, 'nor mount a v1 hierarchy to reach its limits there');
  t.same(limits.map((f) => readFileSync(f, 'utf8')), values, 'the limits on the host are unchanged');

  await stop(sh.conf, { timeoutSeconds: 3 });
  t.notOk(existsSync(dir), 'stop removes its cgroup, the child it made included');
});
