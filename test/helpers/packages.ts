// Packages made BY HAND with the real tools (tar, gzip, ar, dpkg-deb, openssl),
// exactly as OpenWrt's ipkg-build and Debian's tools make them, so the reader is
// checked against bytes it did not write itself.
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync, linkSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { toolSign, type KeyPair } from './keys.js';

/** One entry of a data tree: text content (mode 0644), or a described entry. */
export type TreeEntry =
  | string
  | { content?: string | Buffer; mode?: number }
  | { dir: true; mode?: number }
  | { symlink: string }
  | { hardlink: string };

/** Writes a tree of files under `root` (paths relative, parents made 0755). */
export function writeTree(root: string, entries: Record<string, TreeEntry>): string {
  mkdirSync(root, { recursive: true, mode: 0o755 });
  for (const [rel, e] of Object.entries(entries)) {
    const p = path.join(root, rel);
    mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
    if (typeof e === 'string') {
      writeFileSync(p, e, { mode: 0o644 });
    } else if ('dir' in e) {
      mkdirSync(p, { recursive: true });
      chmodSync(p, e.mode ?? 0o755);
    } else if ('symlink' in e) {
      symlinkSync(e.symlink, p);
    } else if ('hardlink' in e) {
      linkSync(path.join(root, e.hardlink), p);
    } else {
      writeFileSync(p, e.content ?? '');
      chmodSync(p, e.mode ?? 0o644);
    }
  }
  return root;
}

/** A control stanza from fields, in the given order. */
export function controlText(fields: Record<string, string>): string {
  return Object.entries(fields).map(([k, v]) => `${k}: ${v}\n`).join('');
}

export interface HandPackage {
  /** Working directory (the caller removes it). */
  work: string;
  /** The control stanza text, or fields. */
  control: string | Record<string, string>;
  scripts?: Partial<Record<'preinst' | 'postinst' | 'prerm' | 'postrm', string>>;
  conffiles?: string[];
  /** The data tree. */
  data: Record<string, TreeEntry>;
  /** Makes data.tar.gz at the path given instead of tarring `data` (for hostile archives). */
  dataTar?: (out: string) => void;
  /** Output file (default WORK/pkg.ipk). */
  out?: string;
  /** `tar` (OpenWrt, default) or `ar` (Debian form). */
  container?: 'tar' | 'ar';
  /** Sign with this key pair, or PEM/signify secret key file: adds checksums + signature.sig. */
  signKey?: KeyPair | string;
}

/** The members of an ipk as ipkg-build writes them into WORK/members. Returns that directory. */
export function makeIpkMembers(p: HandPackage): string {
  const members = path.join(p.work, 'members');
  const ctl = path.join(p.work, 'CONTROL');
  const data = path.join(p.work, 'data');
  mkdirSync(members, { recursive: true });
  writeTree(data, p.data);
  mkdirSync(ctl, { recursive: true });
  writeFileSync(path.join(ctl, 'control'), typeof p.control === 'string' ? p.control : controlText(p.control));
  for (const [name, body] of Object.entries(p.scripts ?? {})) writeFileSync(path.join(ctl, name), body, { mode: 0o755 });
  if (p.conffiles) writeFileSync(path.join(ctl, 'conffiles'), p.conffiles.map((c) => `${c}\n`).join(''));
  const ogargs = ['--format=gnu', '--numeric-owner', '--owner=0', '--group=0'];
  if (p.dataTar) p.dataTar(path.join(members, 'data.tar.gz'));
  else execFileSync('tar', [...ogargs, '-czf', path.join(members, 'data.tar.gz'), '-C', data, '.']);
  execFileSync('tar', [...ogargs, '-czf', path.join(members, 'control.tar.gz'), '-C', ctl, '.']);
  writeFileSync(path.join(members, 'debian-binary'), '2.0\n');
  return members;
}

/** Adds `checksums` (sha256sum of the stored members) and `signature.sig` (openssl or signify) to `members`. */
export function signMembersByHand(members: string, key: KeyPair | string, names = ['./control.tar.gz', './data.tar.gz']): void {
  if (typeof key === 'string') key = keyPairOf(key);
  const sums = execFileSync('sha256sum', names, { cwd: members, encoding: 'utf8' });
  writeFileSync(path.join(members, 'checksums'), sums);
  toolSign(key, path.join(members, 'checksums'), path.join(members, 'signature.sig'));
}

/** The KeyPair for a secret key file, its kind read from the file (signify, or what openssl says). */
function keyPairOf(secret: string): KeyPair {
  if (readFileSync(secret, 'latin1').startsWith('untrusted comment:')) return { kind: 'signify', secret, public: '' };
  const text = execFileSync('openssl', ['pkey', '-in', secret, '-noout', '-text'], { encoding: 'utf8' });
  const kind = /ED25519/i.test(text) ? 'ed25519' : /RSA/i.test(text) ? 'rsa' : 'ecdsa-p256';
  return { kind, secret, public: '' };
}

/** Packs the members directory as the outer container; order as ipkg-build (tar) or Debian (ar). */
export function packMembers(members: string, out: string, container: 'tar' | 'ar', extra: string[] = []): string {
  if (container === 'tar') {
    execFileSync('tar', ['--format=gnu', '--numeric-owner', '--owner=0', '--group=0', '-czf', out,
      './debian-binary', './data.tar.gz', './control.tar.gz', ...extra.map((e) => `./${e}`)], { cwd: members });
  } else {
    execFileSync('ar', ['-crf', out, 'debian-binary', 'control.tar.gz', 'data.tar.gz', ...extra], { cwd: members });
  }
  return out;
}

/** A whole ipk made by hand. */
export function makeIpkByHand(p: HandPackage): string {
  const members = makeIpkMembers(p);
  const extra: string[] = [];
  if (p.signKey) {
    signMembersByHand(members, p.signKey);
    extra.push('checksums', 'signature.sig');
  }
  return packMembers(members, p.out ?? path.join(p.work, 'pkg.ipk'), p.container ?? 'tar', extra);
}

/** A .deb built with `dpkg-deb --build -Z<compression>` from a data tree and control. */
export function makeDebByHand(p: HandPackage & { compression: 'gzip' | 'xz' | 'zstd' }): string {
  const root = path.join(p.work, 'debroot');
  writeTree(root, p.data);
  const ctl = path.join(root, 'DEBIAN');
  mkdirSync(ctl, { recursive: true, mode: 0o755 });
  writeFileSync(path.join(ctl, 'control'), typeof p.control === 'string' ? p.control : controlText(p.control));
  for (const [name, body] of Object.entries(p.scripts ?? {})) writeFileSync(path.join(ctl, name), body, { mode: 0o755 });
  if (p.conffiles) writeFileSync(path.join(ctl, 'conffiles'), p.conffiles.map((c) => `${c}\n`).join(''));
  const out = p.out ?? path.join(p.work, 'pkg.deb');
  execFileSync('dpkg-deb', ['--root-owner-group', `-Z${p.compression}`, '--build', root, out], { stdio: 'pipe' });
  return out;
}

/** Encrypts `file` as Perenio's .bin: `openssl enc -aes-256-cbc -pbkdf2 -salt`. */
export function encryptByHand(file: string, secret: string, out: string): string {
  execFileSync('openssl', ['enc', '-aes-256-cbc', '-pbkdf2', '-salt', '-pass', `pass:${secret}`, '-in', file, '-out', out]);
  return out;
}

/** What a tree holds, path by path: type, permission bits, owner, link target and content hash. */
export interface TreeItem {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  uid: number;
  gid: number;
  link?: string;
  sha256?: string;
}

/** Every entry below `root` (relative paths, root itself excluded), never following symlinks. */
export function describeTree(root: string): Record<string, TreeItem> {
  const out: Record<string, TreeItem> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(root, r);
      const st = lstatSync(p);
      const item: TreeItem = {
        type: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other',
        mode: st.mode & 0o7777, uid: st.uid, gid: st.gid,
      };
      if (st.isSymbolicLink()) {
        item.link = readlinkSync(p);
        item.mode = 0;
      }
      if (st.isFile()) item.sha256 = createHash('sha256').update(readFileSync(p)).digest('hex');
      out[r] = item;
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}
