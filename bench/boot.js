#!/usr/bin/env node
// npm run bench: boot-to-ready, stop, memory kept per subhost, scale, and the
// start-up of the read-only commands against bare Node.js, as medians over
// repeated runs on this machine; the shell tool side by side when Debian's
// overlay-boot package is installed. Writes bench/results/latest.{md,json}.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { boot } from '../dist/commands/boot.js';
import { stopByName } from '../dist/commands/stop.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = (c) => path.join(ROOT, 'bin', `overlay-${c}.js`);
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const SCALE = (process.env.BENCH_SCALE ?? '1,10,50,100').split(',').map(Number);
// The shell tool: Debian's package installs /usr/sbin/overlay-boot; SHELL_TOOL names another copy.
const SHELL_NAME = 'shl0';
const SHELL_TOOL = [process.env.SHELL_TOOL, '/usr/sbin/overlay-boot', '/usr/bin/overlay-boot', '/sbin/overlay-boot'].find((p) => p && existsSync(p));

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const rssKb = (pid) => { try { return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]); } catch { return 0; } };

const work = mkdtempSync('/tmp/ovb-bench-');
chmodSync(work, 0o755);
const bridge = `obb${process.pid % 1000}`;
execFileSync('ip', ['link', 'add', bridge, 'type', 'bridge']);
execFileSync('ip', ['link', 'set', bridge, 'up']);
const made = [];
function cleanup() {
  for (const n of made) { try { spawnSync(process.execPath, [BIN('stop'), '--timeout', '2', path.join(work, `${n}.conf`)]); } catch { /* gone */ } }
  spawnSync('ip', ['link', 'del', bridge]);
  // The shell tool leaves its accounting cgroup (setup_cgroup2_accounting) behind.
  const cgroup2 = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')).find((f) => f[2] === 'cgroup2')?.[1];
  if (cgroup2 && SHELL_TOOL) try { rmdirSync(path.join(cgroup2, SHELL_NAME)); } catch { /* not made, or already gone */ }
  rmSync(work, { recursive: true, force: true });
}
process.on('SIGINT', () => { cleanup(); process.exit(130); });

/** A subhost with one cable to the bridge and no services (dummy_service keeps it up). */
function subhost(name, extra = '') {
  const base = path.join(work, name);
  for (const d of ['root', 'work', 'live']) mkdirSync(path.join(base, d), { recursive: true });
  const conf = path.join(work, `${name}.conf`);
  writeFileSync(conf, `BASE=${name}\nNAME=${name}\nSTART=none\nCABLES=${bridge}=\nLOG=${path.join(work, `${name}.log`)}\n${extra}`, { mode: 0o644 });
  made.push(name);
  return conf;
}

function run(cmd, args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return ms(t0);
}

/** conf.d/minimal.conf with its directories, as an administrator sets it up (README). */
function exampleConf() {
  const dir = path.join(work, 'example');
  for (const d of ['root', 'work', 'live']) mkdirSync(path.join(dir, 'minimal', d), { recursive: true });
  copyFileSync(path.join(ROOT, 'conf.d/minimal.conf'), path.join(dir, 'minimal.conf'));
  return path.join(dir, 'minimal.conf');
}

/** A small Debian package made by dpkg-deb (gzip, as many repositories still ship). */
function smallDeb() {
  const tree = path.join(work, 'deb');
  mkdirSync(path.join(tree, 'DEBIAN'), { recursive: true });
  mkdirSync(path.join(tree, 'usr/share/doc/ovb-bench'), { recursive: true });
  writeFileSync(path.join(tree, 'DEBIAN/control'), 'Package: ovb-bench\nVersion: 1.0\nArchitecture: all\nMaintainer: bench <bench@example.org>\nDescription: start-up figure of overlay-pkg info\n');
  writeFileSync(path.join(tree, 'usr/share/doc/ovb-bench/README'), 'nothing\n');
  const deb = path.join(work, 'ovb-bench_1.0_all.deb');
  execFileSync('dpkg-deb', ['-Zgzip', '--root-owner-group', '--build', tree, deb], { stdio: 'ignore' });
  return deb;
}

// Start-up of the read-only commands, each against `node -e 0` in the same rounds.
// A row whose command is not there (overlay-pkg comes from another branch) is left out.
const STARTUP = [
  { figure: '`overlay-ls`', bin: 'ls', args: () => [] },
  { figure: '`overlay-boot --check` (conf.d/minimal.conf)', bin: 'boot', args: () => ['--check', exampleConf()] },
  { figure: '`overlay-pkg info` (a small .deb)', bin: 'pkg', args: () => ['info', smallDeb()] },
];

const results = { date: new Date().toISOString(), runs: RUNS, machine: `${execFileSync('nproc').toString().trim()} cores, ${execFileSync('uname', ['-r']).toString().trim()}`, ours: {}, shellTool: SHELL_TOOL ? {} : null };

try {
  // Boot-to-ready and stop through the commands, as an administrator runs them.
  const conf = subhost('bench0');
  const bootCli = [], stopCli = [], bootLib = [], stopLib = [], steps = {};
  for (let i = 0; i < RUNS; i++) {
    bootCli.push(run(process.execPath, [BIN('boot'), '-q', conf]));
    stopCli.push(run(path.join(ROOT, 'bin/overlay-stop'), ['-q', conf]));
  }
  // The same in-process: what the library costs without Node.js start-up.
  for (let i = 0; i < RUNS; i++) {
    let t0 = process.hrtime.bigint();
    const r = await boot(conf);
    bootLib.push(ms(t0));
    for (const [k, v] of Object.entries(r.stepTimes)) (steps[k] ??= []).push(v);
    t0 = process.hrtime.bigint();
    await stopByName('bench0');
    stopLib.push(ms(t0));
  }
  // PRIVILEGED=no next to privileged, in the same rounds (issue 16: within 1.2x).
  const confU = subhost('benchu', 'PRIVILEGED=no\n');
  const privBoot = [], privStop = [], unprivBoot = [], unprivStop = [];
  for (let i = 0; i < RUNS; i++) {
    for (const [c, name, b, s] of [[conf, 'bench0', privBoot, privStop], [confU, 'benchu', unprivBoot, unprivStop]]) {
      let t0 = process.hrtime.bigint();
      await boot(c);
      b.push(ms(t0));
      t0 = process.hrtime.bigint();
      await stopByName(name);
      s.push(ms(t0));
    }
  }
  // Node.js alone and each read-only command, in the same rounds, so that load on
  // the machine weighs on both sides of the ratio alike.
  const nodeStart = [];
  const startup = STARTUP.filter((s) => existsSync(BIN(s.bin))).map((s) => ({ ...s, argv: [BIN(s.bin), ...s.args()], times: [] }));
  for (let i = 0; i < RUNS; i++) {
    nodeStart.push(run(process.execPath, ['-e', '0']));
    for (const s of startup) s.times.push(run(process.execPath, s.argv));
  }
  // Memory kept per running subhost: the monitor on the host, pid 1 inside (and dummy_service).
  const r = await boot(conf);
  const monitorKb = rssKb(r.monitorPid), pid1Kb = rssKb(r.pid1);
  const kids = readFileSync(`/proc/${r.pid1}/task/${r.pid1}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  const dummyKb = kids.reduce((a, p) => a + rssKb(p), 0);
  await stopByName('bench0');
  Object.assign(results.ours, {
    bootCliMs: median(bootCli), stopCliMs: median(stopCli), bootLibraryMs: median(bootLib), stopLibraryMs: median(stopLib),
    nodeStartMs: median(nodeStart),
    unprivileged: { bootMs: median(unprivBoot), stopMs: median(unprivStop), privilegedBootMs: median(privBoot), privilegedStopMs: median(privStop) },
    startup: startup.map((s) => ({ figure: s.figure, ms: median(s.times) })),
    stepMs: Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, Math.round(median(v) * 10) / 10])),
    rssKb: { monitor: monitorKb, pid1: pid1Kb, total: monitorKb + pid1Kb, dummyService: dummyKb },
    binaryBytes: { reaper: readFileSync(path.join(ROOT, 'src/native/build/reaper')).length, ovbLaunch: readFileSync(path.join(ROOT, 'src/native/build/ovb-launch')).length },
  });

  // Scale: N subhosts booted back to back through the command, then all stopped.
  results.ours.scale = [];
  for (const n of SCALE) {
    const confs = Array.from({ length: n }, (_, i) => subhost(`s${n}x${i}`));
    const per = [];
    const t0 = process.hrtime.bigint();
    for (const c of confs) per.push(run(process.execPath, [BIN('boot'), '-q', c]));
    const bootTotal = ms(t0);
    const t1 = process.hrtime.bigint();
    for (const c of confs) run(path.join(ROOT, 'bin/overlay-stop'), ['-q', c]);
    const stopTotal = ms(t1);
    const tenth = Math.max(1, Math.ceil(n / 10));
    results.ours.scale.push({
      n, bootTotalMs: Math.round(bootTotal), stopTotalMs: Math.round(stopTotal), bootPerSubhostMs: Math.round(bootTotal / n),
      firstTenthMedianMs: Math.round(median(per.slice(0, tenth))), lastTenthMedianMs: Math.round(median(per.slice(-tenth))),
    });
    made.splice(made.length - n, n);
  }

  if (SHELL_TOOL) {
    // Its overlay-boot returns at once and boots in the background, so boot-to-ready is
    // measured until its reaper runs; its stop until nothing of the subhost is left.
    const name = SHELL_NAME;
    const sconf = subhost(name);
    const reaperPid = () => readdirSync('/proc').filter((p) => /^\d+$/.test(p)).find((p) => {
      try { return readFileSync(`/proc/${p}/cmdline`, 'utf8') === `/.reaper\0${name}\0`; } catch { return false; }
    });
    const until = async (cond, ms) => { const end = Date.now() + ms; while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 1)); return cond(); };
    const gone = () => !reaperPid() && !existsSync(`/run/netns/${name}`) && !existsSync(`/sys/class/net/${name}0`);
    const b = [], s = [];
    let rss;
    for (let i = 0; i < RUNS; i++) {
      let t0 = process.hrtime.bigint();
      spawnSync(SHELL_TOOL, [sconf], { stdio: 'ignore' });
      if (!(await until(reaperPid, 10000))) throw new Error('the shell tool did not start its reaper');
      b.push(ms(t0));
      if (!rss) {
        // Everything it keeps: its own script, unshare, the reaper (and the dummy service).
        const pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
          try {
            const c = readFileSync(`/proc/${p}/cmdline`, 'utf8');
            return c.includes(`${name}.conf`) || c === `/.reaper\0${name}\0` || (c.startsWith('unshare\0-fpiuT') && readFileSync(`/proc/${reaperPid()}/stat`, 'utf8').split(') ')[1].split(' ')[1] === p);
          } catch { return false; }
        });
        rss = pids.reduce((a, p) => a + rssKb(p), 0);
      }
      t0 = process.hrtime.bigint();
      spawnSync(SHELL_TOOL.replace(/overlay-boot$/, 'overlay-stop'), [sconf], { stdio: 'ignore' });
      if (!(await until(gone, 10000))) throw new Error('the shell tool did not stop its subhost');
      s.push(ms(t0));
    }
    made.splice(made.indexOf(name), 1);
    Object.assign(results.shellTool, { bootMs: median(b), stopMs: median(s), rssKb: rss, path: SHELL_TOOL });
  }
} finally {
  cleanup();
}

const o = results.ours, st = results.shellTool;
const ratio = (a, b) => (b ? `${(a / b).toFixed(2)}` : 'n/a');
const lines = [
  `Medians of ${RUNS} runs, ${results.date}, ${results.machine}. One cable to a bridge, no services.`, '',
  '| figure | overlay-boot (this) | shell tool | ours / theirs |', '|---|---|---|---|',
  `| boot to ready, command (until the reaper runs) | ${o.bootCliMs.toFixed(0)} ms | ${st?.bootMs ? `${st.bootMs.toFixed(0)} ms` : 'not installed (about 530 ms)'} | ${ratio(o.bootCliMs, st?.bootMs)} |`,
  `| stop, command (until nothing is left) | ${o.stopCliMs.toFixed(0)} ms | ${st?.stopMs ? `${st.stopMs.toFixed(0)} ms` : 'not installed (about 120 ms)'} | ${ratio(o.stopCliMs, st?.stopMs)} |`,
  `| boot to ready, library (no Node.js start-up) | ${o.bootLibraryMs.toFixed(1)} ms | | |`,
  `| stop, library | ${o.stopLibraryMs.toFixed(1)} ms | | |`,
  `| boot to ready, library, PRIVILEGED=no (privileged in the same rounds) | ${o.unprivileged.bootMs.toFixed(1)} ms (${o.unprivileged.privilegedBootMs.toFixed(1)} ms) | | unprivileged / privileged ${ratio(o.unprivileged.bootMs, o.unprivileged.privilegedBootMs)} |`,
  `| stop, library, PRIVILEGED=no (privileged in the same rounds) | ${o.unprivileged.stopMs.toFixed(1)} ms (${o.unprivileged.privilegedStopMs.toFixed(1)} ms) | | unprivileged / privileged ${ratio(o.unprivileged.stopMs, o.unprivileged.privilegedStopMs)} |`,
  `| Node.js start-up alone (\`node -e 0\`) | ${o.nodeStartMs.toFixed(0)} ms | | |`,
  `| resident memory per subhost (monitor + pid 1) | ${o.rssKb.total} KB (${o.rssKb.monitor} + ${o.rssKb.pid1}) | ${st?.rssKb ? `${st.rssKb} KB (script, unshare, reaper)` : 'about 4200 KB'} | ${ratio(o.rssKb.total, st?.rssKb ?? 4200)} |`,
  `| dummy_service (stands in for a service) | ${o.rssKb.dummyService} KB | | |`,
  `| static binaries: reaper, ovb-launch | ${o.binaryBytes.reaper} B, ${o.binaryBytes.ovbLaunch} B | reaper 682 KB | |`,
  '', '| start-up (the command until it exits) | overlay-boot (this) | / `node -e 0` |', '|---|---|---|',
  ...o.startup.map((s) => `| ${s.figure} | ${s.ms.toFixed(0)} ms | ${ratio(s.ms, o.nodeStartMs)} |`),
  '', '| subhosts | boot all | stop all | boot per subhost | first tenth (median) | last tenth (median) |', '|---|---|---|---|---|---|',
  ...o.scale.map((s) => `| ${s.n} | ${s.bootTotalMs} ms | ${s.stopTotalMs} ms | ${s.bootPerSubhostMs} ms | ${s.firstTenthMedianMs} ms | ${s.lastTenthMedianMs} ms |`),
  '', 'Library boot, per step (median ms): ' + Object.entries(o.stepMs).map(([k, v]) => `${k} ${v}`).join(', '),
];
mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
writeFileSync(path.join(ROOT, 'bench/results/latest.json'), JSON.stringify(results, null, 2) + '\n');
writeFileSync(path.join(ROOT, 'bench/results/latest.md'), lines.join('\n') + '\n');
console.log(lines.join('\n'));
