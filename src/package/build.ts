/**
 * Building an ipk from a directory in opkg-build's layout, reproducibly: the same
 * directory gives the same bytes whoever builds it and whenever (sorted entries, owner
 * 0/0, one fixed mtime, a fixed gzip header, GNU tar headers without atime/ctime).
 */
import { createReadStream, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import path from 'node:path';
import { isOverlayBootError, OverlayBootError } from '../errors.js';
import { parseConffiles, parseControl } from './control.js';
import { writePackageContainer, writeStreamed } from './outer-write.js';
import { signPackage } from './sign.js';
import { writeTar, type TarEntry } from './tar-write.js';
import type { ControlFields, PackageContainer } from './types.js';

/** Options of buildPackage. */
export interface BuildOptions {
  /** The package file to write; default `outDir/NAME_VERSION_ARCH.ipk` (epoch left out). */
  output?: string;
  /** Where the default-named file goes; default the current directory. */
  outDir?: string;
  /** `tar` (OpenWrt's gzip'd tar, default) or `ar` (Debian's form). */
  container?: PackageContainer;
  /** A PEM private key or signify secret key file to sign the package with. */
  signKey?: string;
  /** The mtime of every entry, seconds; default SOURCE_DATE_EPOCH from `env`, else 0. */
  mtime?: number;
  /** Where SOURCE_DATE_EPOCH is looked up; default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** What was built. */
export interface BuildResult {
  file: string;
  /** The control fields as written (Installed-Size filled in). */
  control: ControlFields;
  /** Bytes of data: the sum of the regular files' sizes, each hard-linked file once. */
  installedSize: number;
}

export const MAINTAINER_SCRIPTS = ['preinst', 'postinst', 'prerm', 'postrm'] as const;
const MAX_CONTROL_FILE = 1024 * 1024;
const PACKAGE_NAME = /^[a-z0-9][a-z0-9.+-]*$/;

function buildFailed(message: string, file: string, cause?: unknown, extra: { line?: number; variable?: string } = {}): OverlayBootError {
  return new OverlayBootError('PKG_BUILD_FAILED', message, { file, cause, ...extra });
}

function byName(a: string, b: string): number {
  // GNU tar's --sort=name compares bytes
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function fileEntry(abs: string, stored: string, st: Stats, mtime: number, mode = st.mode & 0o7777): TarEntry {
  return { path: stored, type: 'file', mode, size: st.size, mtime, body: () => createReadStream(abs) };
}

/**
 * The data entries under `root` (all but the top-level CONTROL), depth first in name
 * order as `./path`, with hard links to an earlier entry as links. Sockets, fifos and
 * device nodes are refused: a package's data is files, directories and links.
 */
function dataEntries(root: string, mtime: number): TarEntry[] {
  // the data's root is the install target's /: its mode is not the build directory's
  const entries: TarEntry[] = [{ path: './', type: 'dir', mode: 0o755, size: 0, mtime }];
  const seen = new Map<string, string>();
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort(byName)) {
      if (rel === '' && name === 'CONTROL') continue;
      const abs = path.join(dir, name);
      const stored = `./${rel}${name}`;
      const st = lstatSync(abs);
      if (st.isDirectory()) {
        entries.push({ path: `${stored}/`, type: 'dir', mode: st.mode & 0o7777, size: 0, mtime });
        walk(abs, `${rel}${name}/`);
      } else if (st.isSymbolicLink()) {
        entries.push({ path: stored, type: 'symlink', mode: st.mode & 0o7777, size: 0, mtime, linkTarget: readlinkSync(abs) });
      } else if (st.isFile()) {
        const id = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seen.get(id) : undefined;
        if (first) entries.push({ path: stored, type: 'hardlink', mode: st.mode & 0o7777, size: 0, mtime, linkTarget: first });
        else entries.push(fileEntry(abs, stored, st, mtime));
        if (st.nlink > 1 && !first) seen.set(id, stored);
      } else {
        throw buildFailed('not a regular file, directory or symlink (sockets, fifos and device nodes cannot be packaged)', abs);
      }
    }
  };
  walk(root, '');
  return entries;
}

/** `Field: value` lines; a value keeps its continuation lines. */
export function formatControl(fields: Record<string, string>): string {
  return Object.entries(fields).map(([k, v]) => (v.startsWith('\n') ? `${k}:${v}\n` : `${k}: ${v}\n`)).join('');
}

function withField(fields: Record<string, string>, name: string, value: string): Record<string, string> {
  const key = Object.keys(fields).find((k) => k.toLowerCase() === name.toLowerCase());
  return { ...fields, [key ?? name]: value };
}

function resolveMtime(opts: BuildOptions): number {
  if (opts.mtime !== undefined) return opts.mtime;
  const env = (opts.env ?? process.env).SOURCE_DATE_EPOCH;
  if (env === undefined || env === '') return 0;
  if (!/^[0-9]{1,11}$/.test(env)) throw buildFailed(`SOURCE_DATE_EPOCH ${JSON.stringify(env)} is not a number of seconds`, 'SOURCE_DATE_EPOCH');
  return Number(env);
}

function readControlDir(dir: string): { control: ControlFields; files: { name: string; abs: string; st: Stats }[]; conffiles: string[] } {
  const ctlDir = path.join(dir, 'CONTROL');
  const ctlFile = path.join(ctlDir, 'control');
  let names: string[];
  try {
    names = readdirSync(ctlDir).sort(byName);
  } catch (e) {
    throw buildFailed(`no CONTROL directory (opkg-build's layout: DIR/CONTROL/control): ${(e as Error).message}`, ctlDir, e);
  }
  const files = names.map((name) => {
    const abs = path.join(ctlDir, name);
    const st = lstatSync(abs);
    if (!st.isFile()) throw buildFailed('CONTROL may hold regular files only', abs);
    if (st.size > MAX_CONTROL_FILE) throw buildFailed(`larger than ${MAX_CONTROL_FILE} bytes`, abs);
    return { name, abs, st };
  });
  if (!names.includes('control')) throw buildFailed('the control file is missing', ctlFile);
  let control: ControlFields;
  let conffiles: string[] = [];
  try {
    control = parseControl(readFileSync(ctlFile, 'utf8'), { file: ctlFile, member: 'control' });
    const cf = path.join(ctlDir, 'conffiles');
    if (names.includes('conffiles')) conffiles = parseConffiles(readFileSync(cf, 'utf8'), { file: cf, member: 'conffiles' });
  } catch (e) {
    if (!isOverlayBootError(e)) throw e;
    throw buildFailed(e.message, e.file ?? ctlFile, e, { line: e.line, variable: e.variable });
  }
  return { control, files, conffiles };
}

/** The package file name opkg-build gives: NAME_VERSION_ARCH.ipk, the epoch left out. */
export function packageFileName(control: ControlFields): string {
  return `${control.package}_${control.version.replace(/^[0-9]+:/, '')}_${control.architecture}.ipk`;
}

async function tarGzFile(file: string, entries: TarEntry[]): Promise<number> {
  await writeStreamed(file, true, (out) => writeTar(out, entries));
  return statSync(file).size;
}

/**
 * Builds an ipk from `dir` in opkg-build's layout: `DIR/CONTROL/control` (Package,
 * Version, Architecture required and checked), optional maintainer scripts (stored with
 * mode 0755), `conffiles` (each must be a regular file of the data) and other CONTROL
 * files; everything else in DIR is the data at its path. Fills in `Installed-Size`
 * (bytes). Writes through a temporary directory beside the output and renames, so a
 * failure leaves no file; signs before the rename when `signKey` is given.
 * Errors: PKG_BUILD_FAILED naming the file at fault (a bad control names line and field).
 */
export async function buildPackage(dir: string, opts: BuildOptions = {}): Promise<BuildResult> {
  try {
    if (!statSync(dir).isDirectory()) throw buildFailed('not a directory', dir);
  } catch (e) {
    if (isOverlayBootError(e)) throw e;
    throw buildFailed(`cannot read the package directory: ${(e as Error).message}`, dir, e);
  }
  const mtime = resolveMtime(opts);
  const { control: parsed, files, conffiles } = readControlDir(dir);
  let data: TarEntry[];
  try {
    data = dataEntries(dir, mtime);
  } catch (e) {
    if (isOverlayBootError(e)) throw e;
    throw buildFailed(`cannot read the data: ${(e as Error).message}`, dir, e);
  }
  for (const c of conffiles) {
    if (!data.some((e) => e.path === `.${c}` && e.type === 'file')) {
      throw buildFailed(`conffile ${c} is not a regular file of the package's data`, path.join(dir, 'CONTROL', 'conffiles'));
    }
  }
  const installedSize = data.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
  const fields = withField(parsed.fields, 'Installed-Size', String(installedSize));
  const control: ControlFields = { ...parsed, fields };
  const controlBytes = Buffer.from(formatControl(fields));
  const ctlEntries: TarEntry[] = [{ path: './', type: 'dir', mode: 0o755, size: 0, mtime }];
  for (const f of files) {
    if (f.name === 'control') ctlEntries.push({ path: './control', type: 'file', mode: 0o644, size: controlBytes.length, mtime, body: controlBytes });
    else ctlEntries.push(fileEntry(f.abs, `./${f.name}`, f.st, mtime, (MAINTAINER_SCRIPTS as readonly string[]).includes(f.name) ? 0o755 : 0o644));
  }

  const output = path.resolve(opts.output ?? path.join(opts.outDir ?? process.cwd(), packageFileName(control)));
  let tmp: string;
  try {
    mkdirSync(path.dirname(output), { recursive: true });
    tmp = mkdtempSync(path.join(path.dirname(output), '.ovb-build-'));
  } catch (e) {
    throw buildFailed(`cannot write beside the output: ${(e as Error).message}`, output, e);
  }
  try {
    const ctlTar = path.join(tmp, 'control.tar.gz');
    const dataTar = path.join(tmp, 'data.tar.gz');
    const ctlSize = await tarGzFile(ctlTar, ctlEntries);
    const dataSize = await tarGzFile(dataTar, data);
    const out = path.join(tmp, 'package');
    await writePackageContainer(out, opts.container ?? 'tar', [
      { name: 'debian-binary', size: 4, body: Buffer.from('2.0\n') },
      { name: 'control.tar.gz', size: ctlSize, body: () => createReadStream(ctlTar) },
      { name: 'data.tar.gz', size: dataSize, body: () => createReadStream(dataTar) },
    ], mtime);
    if (opts.signKey) await signPackage(out, opts.signKey);
    renameSync(out, output);
  } catch (e) {
    if (isOverlayBootError(e)) throw e;
    throw buildFailed(`cannot build the package: ${(e as Error).message}`, output, e);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { file: output, control, installedSize };
}

/** Options of buildRemovalPackage. */
export interface RemovalOptions extends BuildOptions {
  /** Version of the removal package; default `1`. */
  version?: string;
}

/**
 * Builds KerOS's removal package for `name`: package `NAME-remove`, `Tags: remove`,
 * `Depends: NAME`, Architecture `all`, no data; installing it uninstalls NAME.
 */
export async function buildRemovalPackage(name: string, opts: RemovalOptions = {}): Promise<BuildResult> {
  if (!PACKAGE_NAME.test(name)) {
    throw new OverlayBootError('PKG_BUILD_FAILED', `${JSON.stringify(name)} is not a package name ([a-z0-9][a-z0-9.+-]*)`, { variable: 'NAME', found: name });
  }
  const outDir = path.resolve(opts.output ? path.dirname(opts.output) : opts.outDir ?? process.cwd());
  mkdirSync(outDir, { recursive: true });
  const dir = mkdtempSync(path.join(outDir, '.ovb-remove-'));
  try {
    mkdirSync(path.join(dir, 'CONTROL'));
    writeFileSync(path.join(dir, 'CONTROL', 'control'), formatControl({
      Package: `${name}-remove`,
      Version: opts.version ?? '1',
      Architecture: 'all',
      Depends: name,
      Tags: 'remove',
      Description: `Removes the package ${name}`,
    }));
    return await buildPackage(dir, { ...opts, outDir });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
