// Issue 11: a subhost's root can leave links in UPPER between boots. Every built-in
// step that touches a path below LIVE (or UPPER) resolves it inside the subhost's
// root, so a link planted there never reaches the host: the boot either works inside
// the root or fails with a coded error naming the path.
import t, { type Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { boot } from '../../src/commands/boot.js';
import { enter } from '../../src/commands/enter.js';
import { list } from '../../src/commands/list.js';
import { share } from '../../src/commands/share.js';
import { stopByName } from '../../src/commands/stop.js';
import { OverlayBootError } from '../../src/errors.js';
import { snapshotHost } from '../helpers/host.js';
import { makeBusyboxRoot } from '../helpers/rootfs.js';
import { testModes } from '../helpers/mode.js';
import { makeSubhost, subhostTest, tempDir, uniqueName } from '../helpers/subhost.js';

const isRoot = process.getuid?.() === 0;
const hasBusybox = spawnSync('/bin/busybox', ['true']).status === 0;

/** Everything a step could change about a host file or directory (and its entries). */
function describe(p: string): string {
  const st = lstatSync(p);
  const head = `${p} ${st.mode.toString(8)} ${st.uid}:${st.gid} nlink=${st.nlink}`;
  if (st.isDirectory()) return [head, ...readdirSync(p).sort().map((e) => describe(path.join(p, e)))].join('\n');
  if (st.isFile()) return `${head} ${JSON.stringify(readFileSync(p, 'utf8'))}`;
  return head;
}

/** The host's victims: a directory (0750, owner 1234:1234, one file) and a file (0600, with content). */
function makeVictims(t: Test) {
  const dir = tempDir(t, 'ovb-victim-');
  const vdir = path.join(dir, 'vdir');
  mkdirSync(vdir);
  writeFileSync(path.join(vdir, 'keep'), 'keep\n', { mode: 0o640 });
  chmodSync(vdir, 0o750);
  chownSync(vdir, 1234, 1234);
  const vfile = path.join(dir, 'vfile');
  writeFileSync(vfile, 'victim\n', { mode: 0o600 });
  return { dir, vdir, vfile, state: () => describe(dir) };
}

/** A link at where (below UPPER) to target: absolute, or relative with more `..` than the depth. */
function plant(upper: string, where: string, target: string, relative: boolean) {
  const link = path.join(upper, where);
  mkdirSync(path.dirname(link), { recursive: true });
  symlinkSync(relative ? `${'../'.repeat(12)}${target.slice(1)}` : target, link);
}

interface Case {
  /** Path below LIVE (as UPPER holds it) where the link goes. */
  where: string;
  /** Extra config lines. */
  lines?: string[];
  /** The link leads to the victim directory, or to the victim file. */
  to: 'dir' | 'file';
}

const cases: Case[] = [
  { where: 'dev', to: 'dir' },
  { where: 'sys', to: 'dir' },
  { where: 'sys', to: 'file' },
  { where: 'proc', to: 'dir' },
  { where: 'run', to: 'dir', lines: ['RAM_SIZE=1M'] },
  { where: 'etc/network', to: 'dir' },
  { where: 'etc/network/interfaces', to: 'file' },
  { where: 'etc/adjtime', to: 'file' },
  { where: '.reaper', to: 'file' },
  { where: 'srv/share', to: 'dir', lines: ['SHARE=SHARED:/srv/share'] },
  { where: 'srv/share', to: 'file', lines: ['SHARE=SHARED:/srv/share'] },
];

if (!isRoot || !hasBusybox) {
  t.plan(0, 'needs root and busybox-static');
} else {
  const lower = makeBusyboxRoot(path.join(tempDir(t, 'ovb-lower-'), 'root'));
  const shared = tempDir(t, 'ovb-shared-');
  writeFileSync(path.join(shared, 'note'), 'shared\n');

  // Unprivileged, the boot also gives UPPER's top and the premount's files to the mapped root: inside the root too.
  for (const c of cases) {
    for (const [relative, mode] of [false, true].flatMap((r) => testModes().map((m) => [r, m] as const))) {
      const name = uniqueName('y');
      const title = `a ${relative ? 'relative' : 'absolute'} link at ${c.where} to a host ${c.to === 'dir' ? 'directory' : 'file'} (${mode})`;
      subhostTest(t, title, [name], async (t) => {
        const v = makeVictims(t);
        const lines = ['START=none', ...(c.lines ?? []).map((l) => l.replace('SHARED', shared))];
        const sh = makeSubhost(t, name, lines, { lower, mode });
        plant(path.join(sh.base, 'root'), c.where, c.to === 'dir' ? v.vdir : v.vfile, relative);
        const before = v.state();
        const host = snapshotHost({ names: [name] });
        let outcome: string;
        try {
          await boot(sh.conf);
          outcome = 'booted';
          await stopByName(name, { timeoutSeconds: 3 });
        } catch (e) {
          t.type(e, OverlayBootError, 'a coded error');
          const err = e as OverlayBootError;
          outcome = `${err.code}: ${err.message}`;
          t.equal(err.code, 'STEP_FAILED', `refused as a failed step: ${err.message}`);
          t.match(err.message, `/${c.where.split('/')[0]}`, 'the error names the path');
        }
        t.comment(outcome);
        t.equal(v.state(), before, `the host's ${c.to} is unchanged (mode, owner, content, entries)`);
        t.same(snapshotHost({ names: [name] }), host, 'the host snapshot is unchanged');
      });
    }
  }

  // LOG is a host path of the configuration: opened O_NOFOLLOW, only a root-owned regular file.
  const logCases: Array<[string, (log: string, v: ReturnType<typeof makeVictims>) => void]> = [
    ['a link to a host file', (log, v) => symlinkSync(v.vfile, log)],
    ['a link to a host directory', (log, v) => symlinkSync(v.vdir, log)],
    ['a file owned by another user', (log) => { writeFileSync(log, ''); chownSync(log, 1234, 1234); }],
    ['a FIFO', (log) => { execFileSync('mkfifo', [log]); }],
    ['a directory', (log) => { mkdirSync(log); }],
  ];
  for (const [what, make] of logCases) {
    const name = uniqueName('y');
    subhostTest(t, `LOG that is ${what} is refused before anything is done`, [name], async (t) => {
      const v = makeVictims(t);
      const sh = makeSubhost(t, name, ['START=none'], { lower });
      const log = path.join(sh.dir, 'log');
      make(log, v);
      const before = v.state();
      await t.rejects(boot(sh.conf), { code: 'LOG_UNSAFE', variable: 'LOG', message: new RegExp(log) }, 'LOG_UNSAFE naming LOG');
      t.equal(v.state(), before, 'the host file and directory are unchanged');
    });
  }

  for (const mode of testModes()) {
    // A twin of the victim inside the root: the step works there, never on the host's.
    const twin = uniqueName('y');
    subhostTest(t, `links to a path that also exists inside: /sys and /dev are mounted inside the root (${mode})`, [twin], async (t) => {
      const name = twin;
      const v = makeVictims(t);
      const sh = makeSubhost(t, name, ['START=none'], { lower, mode });
      const upper = path.join(sh.base, 'root');
      const twinSys = path.join(upper, v.vdir);
      const twinDev = path.join(upper, v.dir, 'devtwin');
      // Only the twins have the victims' modes: parents a subhost's root (mapped, when unprivileged) can pass.
      for (const twinDir of [twinSys, twinDev]) mkdirSync(path.dirname(twinDir), { recursive: true, mode: 0o755 });
      mkdirSync(twinSys, { mode: 0o750 });
      mkdirSync(twinDev, { mode: 0o700 });
      plant(upper, 'sys', v.vdir, false);
      plant(upper, 'dev', path.join(v.dir, 'devtwin'), true);
      const before = v.state();
      try {
        await boot(sh.conf);
        t.equal(await enter(name, ['sh', '-c', 'test -c /dev/null && test -d /sys/class/net'], { stdio: 'ignore' }), 0,
          '/dev/null and sysfs are there, through the links inside the root');
      } finally {
        await stopByName(name, { timeoutSeconds: 3 });
      }
      t.equal(v.state(), before, 'the host directory is unchanged');
      t.equal(statSync(twinSys).mode & 0o7777, 0o555, 'the twin inside UPPER got /sys\'s mode');
    });

    // overlay-share into a running subhost whose target is a link the subhost made.
    const late = uniqueName('y');
    subhostTest(t, `overlay-share onto a link made inside the running subhost (${mode})`, [late], async (t) => {
      const name = late;
      const v = makeVictims(t);
      const sh = makeSubhost(t, name, ['START=none'], { lower, mode });
      const before = v.state();
      try {
        await boot(sh.conf);
        for (const [i, target] of [v.vdir, `../../../../..${v.vdir}`, v.vfile].entries()) {
          t.equal(await enter(name, ['ln', '-s', target, `/link${i}`], { stdio: 'ignore' }), 0);
          await t.rejects(share(shared, name, { subhostPath: `/link${i}` }), { code: 'STEP_FAILED', message: new RegExp(`/link${i}`) },
            `share onto /link${i} (-> ${target}) fails naming it`);
        }
      } finally {
        await stopByName(name, { timeoutSeconds: 3 });
      }
      t.equal(v.state(), before, 'the host directory and file are unchanged');
    });

    // overlay-ls reads the reaper's report below pid 1's root: a link the subhost puts
    // in its place must not make the host read (and show) one of its own files.
    const reader = uniqueName('r');
    subhostTest(t, `overlay-ls never follows a link planted in place of the reaper's report (${mode})`, [reader], async (t) => {
      const dir = tempDir(t, 'ovb-secret-');
      const secret = path.join(dir, 'secret.json');
      writeFileSync(secret, JSON.stringify({ name: 'HOST-SECRET', phase: 'running', services: [] }));
      const sh = makeSubhost(t, reader, ['START=none'], { lower, mode });
      try {
        await boot(sh.conf);
        t.ok(list().find((s) => s.name === reader)?.reaper, 'the real report is read');
        for (const target of [secret, `../../../../..${secret}`]) {
          t.equal(await enter(reader, ['sh', '-c', `rm -f /run/overlay-boot-reaper.json && ln -s ${target} /run/overlay-boot-reaper.json`], { stdio: 'ignore' }), 0);
          const seen = list().find((s) => s.name === reader);
          t.equal(seen?.state, 'running');
          t.equal(seen?.reaper, undefined, `a link to ${target} is not followed`);
          t.notMatch(JSON.stringify(seen), /HOST-SECRET/);
        }
      } finally {
        await stopByName(reader, { timeoutSeconds: 3 });
      }
    });
  }
}
