// overlay-stop's native fast path (bin/overlay-stop -> ovb-launch stop): a running
// subhost is stopped without Node.js; every other case falls back to the full command.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { boot } from '../../src/commands/boot.js';
import { snapshotHost, waitFor } from '../helpers/host.js';
import { writeScript } from '../helpers/rootfs.js';
import { idmapLeftovers, testModes } from '../helpers/mode.js';
import { makeBridge, makeSubhost, subhostTest, tempDir, uniqueName } from '../helpers/subhost.js';

const STOP = fileURLToPath(new URL('../../bin/overlay-stop', import.meta.url));
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * An environment whose first `node` on PATH leaves a marker file and fails: the fast
 * path must never start it (with a merged /usr, dropping /usr/bin from PATH does not
 * hide the real one).
 */
function noNode(t: Test): { env: NodeJS.ProcessEnv; ranNode: () => boolean } {
  const dir = tempDir(t, 'ovb-nonode-');
  const marker = path.join(dir, 'node-ran');
  writeScript(path.join(dir, 'node'), `echo "$@" > ${marker}\nexit 99\n`);
  return { env: { ...process.env, PATH: `${dir}:/usr/sbin:/usr/bin:/sbin:/bin` }, ranNode: () => existsSync(marker) };
}

for (const mode of testModes()) {
  const a = uniqueName('q');
  subhostTest(t, `a running subhost stops through the native helper, and nothing is left (${mode})`, [a], async (t) => {
    const br = makeBridge(t, `${a}b`);
    const before = snapshotHost({ names: [a] });
    const sh = makeSubhost(t, a, ['START=none', `CABLES=${br}=`], { mode });
    const r = await boot(sh.conf);
    const line = readFileSync(`/run/overlay-boot/${a}.stop`, 'utf8').trim().split('\t');
    t.same(line.slice(0, 3), [sh.conf, a, String(r.pid1)], 'the fast-stop line names config, NAME and pid 1');
    t.equal(line[4], String(r.monitorPid), 'and the monitor');
    const { env, ranNode } = noNode(t);
    const res = spawnSync(STOP, [sh.conf], { encoding: 'utf8', env });
    t.equal(res.status, 0, res.stderr);
    t.equal(res.stdout, `${a} stopped\n`);
    t.notOk(ranNode(), 'Node.js was never started');
    t.notOk(existsSync(`/run/overlay-boot/${a}.stop`), 'the fast-stop line went with the record');
    t.ok(same(snapshotHost({ names: [a] }).links.filter((l) => l !== br), before.links.filter((l) => l !== br)), 'cable end gone');
    t.same(snapshotHost({ names: [a] }).processes, [], 'no process left');
    t.same(idmapLeftovers(a), [], 'no user namespace file or id range left (unprivileged)');
  });
}

const b = uniqueName('q');
subhostTest(t, 'through a symlinked config path, quietly, with a timeout', [b], async (t) => {
  const sh = makeSubhost(t, b, ['START=none']);
  await boot(sh.conf);
  const link = path.join(tempDir(t, 'ovb-ln-'), `${b}.conf`);
  symlinkSync(sh.conf, link);
  const { env, ranNode } = noNode(t);
  const res = spawnSync(STOP, ['-q', '--timeout', '2', link], { encoding: 'utf8', env });
  t.equal(res.status, 0, res.stderr);
  t.equal(res.stdout, '', 'quiet');
  t.notOk(ranNode(), 'Node.js was never started');
  t.notOk(existsSync(`/run/overlay-boot/${b}.json`));
});

const c = uniqueName('q');
subhostTest(t, 'everything else falls back to the full overlay-stop', [c], async (t) => {
  const sh = makeSubhost(t, c, ['START=none']);
  // The marker proves the fast path's absence would be seen: the fallback does start `node`.
  const { env, ranNode } = noNode(t);
  const viaFake = spawnSync(STOP, [sh.conf], { encoding: 'utf8', env });
  t.equal(viaFake.status, 99, 'not running: the full command is started');
  t.ok(ranNode(), 'through node');
  const notRunning = spawnSync(STOP, [sh.conf], { encoding: 'utf8' });
  t.equal(notRunning.status, 1);
  t.equal(notRunning.stderr, `${c} is not running\n`, 'not running: the full command says so');
  const help = spawnSync(STOP, ['--help'], { encoding: 'utf8' });
  t.equal(help.status, 0);
  t.match(help.stdout, /usage: overlay-stop/);
  // A fast-stop line whose pids are not those processes any more (a crash, a reused pid) is not trusted.
  const r = await boot(sh.conf);
  const file = `/run/overlay-boot/${c}.stop`;
  const f = readFileSync(file, 'utf8').split('\t');
  f[3] = String(Number(f[3]) + 1);
  writeFileSync(file, f.join('\t'));
  const res = spawnSync(STOP, [sh.conf], { encoding: 'utf8' });
  t.equal(res.status, 0, res.stderr);
  t.equal(res.stdout, `${c} stopped\n`, 'stopped by the full command instead');
  t.ok(await waitFor(() => !existsSync(`/proc/${r.pid1}`), 3000));
});
