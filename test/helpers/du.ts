/**
 * A private lifecycle world per test: a state directory, a templates directory, a boot
 * list, a trusted-keys directory holding the public half of a real key made with openssl,
 * and the pkg.ini naming them all. Packages are built by hand with the real tools
 * (test/helpers/packages.ts) and signed with that key. At teardown every subhost the
 * state directory knows of (DUs and staging subhosts) is stopped before the directory
 * is removed, so a failing test leaves nothing running.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { Test } from 'tap';
import { enterArgv } from '../../src/commands/enter.js';
import { runningPid1 } from '../../src/commands/list.js';
import { findNative } from '../../src/subhost/native.js';
import { stopByName } from '../../src/commands/stop.js';
import { readPkgConfig, type PkgConfig } from '../../src/package/config.js';
import { opensslKey, type KeyPair } from './keys.js';
import { controlText, makeIpkByHand, type TreeEntry } from './packages.js';
import { tempDir } from './subhost.js';

/** A test's lifecycle world. */
export interface DuEnv {
  /** The directory holding everything below (root's, 0755). */
  dir: string;
  /** The state directory (`[paths] state`); created by the first operation. */
  state: string;
  /** The templates directory (`[paths] templates`), empty: the shipped ones apply. */
  templates: string;
  /** The boot list (`[paths] boot_list`); absent until a DU is installed. */
  bootList: string;
  /** The trusted keys directory, holding `key`'s public half. */
  keys: string;
  /** The signing key pair (Ed25519, made by openssl). */
  key: KeyPair;
  /** The pkg.ini file. */
  configFile: string;
  /** The configuration as the library reads it. */
  config: PkgConfig;
  /** The environment for a CLI child or `main()`: OVERLAY_PKG_CONFIG names `configFile`. */
  env: NodeJS.ProcessEnv;
}

/** Options of {@link makeDuEnv}. */
export interface DuEnvOptions {
  /** Extra ini lines appended to pkg.ini (e.g. `[trust]\nrequire_signature = false`). */
  ini?: string;
}

/**
 * Makes a lifecycle world under /tmp, removed at teardown after every subhost it knows
 * of is stopped.
 */
export function makeDuEnv(t: Test, opts: DuEnvOptions = {}): DuEnv {
  const dir = tempDir(t, 'ovb-du-');
  // On another filesystem than LOWER (the bee template's /): overlayfs refuses a lower
  // layer below another lower layer's root on the same filesystem (ELOOP, "overlapping
  // lowerdir path"), and /tmp is on the root filesystem here. /dev/shm is a tmpfs.
  const state = path.join(mkdtempSync('/dev/shm/ovb-du-state-'), 'state');
  t.teardown(() => rmSync(path.dirname(state), { recursive: true, force: true }));
  const templates = path.join(dir, 'templates');
  const keys = path.join(dir, 'keys');
  const bootList = path.join(dir, 'subhosts.conf');
  mkdirSync(templates, { mode: 0o755 });
  mkdirSync(keys, { mode: 0o755 });
  const key = opensslKey(dir, 'ed25519', 'signer');
  copyFileSync(key.public, path.join(keys, 'signer.pem'));
  const configFile = path.join(dir, 'pkg.ini');
  writeFileSync(configFile, [
    '[trust]', `keys = ${keys}`,
    '[paths]', `state = ${state}`, `templates = ${templates}`, `boot_list = ${bootList}`,
    opts.ini ?? '',
  ].join('\n') + '\n', { mode: 0o644 });
  // Registered after tempDir's removal, so it runs first (tap runs teardowns in reverse).
  t.teardown(() => stopEverySubhostOf(state));
  return { dir, state, templates, bootList, keys, key, configFile, config: readPkgConfig({ file: configFile }), env: { ...process.env, OVERLAY_PKG_CONFIG: configFile } };
}

/**
 * Subhost NAMEs the state directory knows of: every DU record's Subhost, every unit
 * directory's config, and every staging subhost named in the journal.
 */
export function subhostsOf(state: string): string[] {
  const names = new Set<string>();
  const ls = (d: string) => (existsSync(d) ? readdirSync(d) : []);
  for (const f of ls(path.join(state, 'du'))) if (f.endsWith('.json')) names.add(f.slice(0, -'.json'.length));
  for (const unit of ls(path.join(state, 'units'))) {
    names.add(unit);
    for (const f of ls(path.join(state, 'units', unit))) {
      const m = /^(.+)\.conf$/.exec(f);
      if (m) names.add(m[1]!);
    }
  }
  const journal = path.join(state, 'journal.json');
  if (existsSync(journal)) {
    for (const m of readFileSync(journal, 'utf8').matchAll(/"(?:staging|subhost)"\s*:\s*"([^"]+)"/g)) names.add(m[1]!);
  }
  return [...names].filter((n) => /^[A-Za-z0-9][A-Za-z0-9_.-]{0,11}$/.test(n));
}

/** Stops every subhost of {@link subhostsOf} that runs (quietly: most are not running). */
export async function stopEverySubhostOf(state: string): Promise<void> {
  for (const name of subhostsOf(state)) {
    try {
      await stopByName(name, { timeoutSeconds: 3 });
    } catch { /* not running */ }
  }
}

/**
 * An LSB-style init script for a service that is a `sleep` in the background: `start`
 * records its pid in /run/NAME.pid and returns; `status` exits 0 while it runs and 3
 * otherwise; `stop` ends it. `extra` is shell run at the start of `start` (to make a
 * failing service, e.g. `exit 1`).
 */
export function serviceScript(name: string, extra = ''): { content: string; mode: number } {
  const pid = `/run/${name}.pid`;
  return {
    mode: 0o755,
    content: `#!/bin/sh
# test service ${name}
case "$1" in
start)
  ${extra}
  if [ -f ${pid} ] && kill -0 "$(cat ${pid})" 2>/dev/null; then exit 0; fi
  sleep 100000 </dev/null >/dev/null 2>&1 &
  echo $! > ${pid}
  ;;
stop)
  if [ -f ${pid} ]; then kill "$(cat ${pid})" 2>/dev/null; rm -f ${pid}; fi
  ;;
status)
  if [ -f ${pid} ] && kill -0 "$(cat ${pid})" 2>/dev/null; then exit 0; fi
  exit 3
  ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
exit 0
`,
  };
}

/** What {@link buildDu} makes. */
export interface DuPackageSpec {
  /** Package name; default `demo`. */
  name?: string;
  /** Default `1.0`. */
  version?: string;
  /** Default `all`. */
  architecture?: string;
  /** Extra control fields (Maintainer defaults to `Test <test@example.org>`). */
  fields?: Record<string, string>;
  /** The data tree. Default: `usr/share/NAME/hello` with `hello from NAME`. */
  data?: Record<string, TreeEntry>;
  scripts?: Partial<Record<'preinst' | 'postinst' | 'prerm' | 'postrm', string>>;
  conffiles?: string[];
  /** `tar` (default) or `ar`. */
  container?: 'tar' | 'ar';
  /** Sign with the env's key (default true). */
  signed?: boolean;
  /** Output file name in the env's dir; default `NAME_VERSION.ipk`. */
  file?: string;
}

let buildCount = 0;

/** Builds an ipk by hand (tar, gzip, ar, openssl) in the env's directory; returns its path. */
export function buildDu(env: DuEnv, spec: DuPackageSpec = {}): string {
  const name = spec.name ?? 'demo';
  const version = spec.version ?? '1.0';
  buildCount += 1;
  const work = path.join(env.dir, `build-${buildCount}`);
  const out = path.join(env.dir, spec.file ?? `${name}_${version}_${buildCount}.ipk`);
  makeIpkByHand({
    work,
    out,
    control: controlText({
      Package: name, Version: version, Architecture: spec.architecture ?? 'all', Maintainer: 'Test <test@example.org>',
      Description: `test package ${name}`, ...spec.fields,
    }),
    data: spec.data ?? { [`usr/share/${name}/hello`]: `hello from ${name}\n` },
    scripts: spec.scripts,
    conffiles: spec.conffiles,
    container: spec.container,
    signKey: spec.signed === false ? undefined : env.key,
  });
  return out;
}

/** Writes template `NAME.conf` (root's, 0644) into the env's templates directory; returns its path. */
export function writeTemplate(env: DuEnv, name: string, lines: string[]): string {
  const file = path.join(env.templates, `${name}.conf`);
  writeFileSync(file, lines.join('\n') + '\n', { mode: 0o644 });
  return file;
}

/** Runs `cmd` inside running subhost `name` as overlay-go does (ovb-launch enter); its status and output. */
export function runInside(name: string, cmd: string[]): { status: number | null; stdout: string; stderr: string } {
  const pid1 = runningPid1(name);
  const argv = enterArgv(findNative().launcher, pid1, cmd);
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
