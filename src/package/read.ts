/**
 * The one pass over a package file that everything else builds on: detects the
 * container by content, walks the outer members in order (ar or tar), hashes
 * each as stored, parses the control tarball, checks every data entry with the
 * DataGuard and hands safe ones to an optional sink (the unpacker). Nothing is
 * held in memory but small members (control files, checksums, config.json).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { OverlayBootError } from '../errors.js';
import { arMemberStream, isAr, readArMembers, type ArMember } from './ar.js';
import { parseConffiles, parseControl } from './control.js';
import { ByteBudget, CHUNK, compressionOfName, countBytes, decompress, pipeInto, type StreamPlace } from './decompress.js';
import { DataGuard, normalizeMemberPath, problemError, type Problem } from './guard.js';
import { walkTar, type TarEntry } from './tar.js';
import {
  DEFAULT_MAX_UNPACKED_SIZE, type DataFile, type MaintainerScript, type PackageInfo, type PackageReadOptions,
} from './types.js';

/** Receives each safe data entry in archive order; `body` holds a regular file's bytes. */
export interface DataSink {
  entry(file: DataFile, body: AsyncIterable<Buffer>): Promise<void>;
}

/** What one pass found, before any trust decision. */
export interface RawPackage extends Pick<PackageInfo, 'format' | 'container' | 'control' | 'scripts' | 'conffiles' | 'members' | 'files' | 'installedSize' | 'oci'> {
  problems: Problem[];
  checksums?: Buffer;
  signature?: Buffer;
}

const SMALL_CAP = 1024 * 1024;
const SIG_CAP = 64 * 1024;
const SCRIPTS: readonly string[] = ['preinst', 'postinst', 'prerm', 'postrm'];
const IPK_MEMBERS = ['debian-binary', 'control.tar.gz', 'data.tar.gz', 'checksums', 'signature.sig'];
export const ENCRYPTED_MAGIC = 'Salted__';

/** The first bytes of a file (at most `n`). */
export async function readHead(file: string, n = 512): Promise<Buffer> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (cause) {
    throw new OverlayBootError('PKG_UNREADABLE', 'cannot open the package file', { file, cause });
  }
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function isTarHeader(head: Buffer): boolean {
  return head.length >= 512 && head.toString('latin1', 257, 262) === 'ustar';
}

async function readCapped(body: AsyncIterable<Buffer>, cap: number, place: StreamPlace): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > cap) throw new OverlayBootError('PKG_TOO_LARGE', `member is larger than ${cap} bytes`, place);
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

function formatError(file: string, message: string, member?: string): OverlayBootError {
  return new OverlayBootError('PKG_FORMAT', message, { file, member });
}

/** Reads one package file (not encrypted) in a single pass. `label` names it in errors. */
export class PackageReader {
  private readonly budget: ByteBudget;
  private readonly outerBudget: ByteBudget;
  private readonly guard: DataGuard;
  private readonly maxMember: number;
  private readonly raw: Partial<RawPackage> & Pick<RawPackage, 'scripts' | 'members' | 'files' | 'problems'> & { installedSize: number };
  private controlText?: string;
  private conffilesText?: string;
  private readonly seenMembers = new Set<string>();
  private readonly seenControl = new Set<string>();
  private sawRootfs = false;
  private ociTop?: string;

  constructor(private readonly path: string, private readonly label: string, opts: PackageReadOptions, private readonly sink?: DataSink) {
    const cap = opts.maxUnpackedSize ?? DEFAULT_MAX_UNPACKED_SIZE;
    this.maxMember = opts.maxMemberSize ?? cap;
    this.budget = new ByteBudget(cap, label);
    this.outerBudget = new ByteBudget(cap, label);
    this.guard = new DataGuard({ allowDevices: opts.allowDevices, allowSetid: opts.allowSetid, maxMemberSize: this.maxMember });
    this.raw = { scripts: {}, members: [], files: [], problems: [], installedSize: 0, conffiles: [] };
  }

  /** Detects the format and reads everything; throws a PKG_ error on anything but data-entry problems. */
  async read(): Promise<RawPackage> {
    const head = await readHead(this.path);
    if (isAr(head)) await this.readAr();
    else if (head[0] === 0x1f && head[1] === 0x8b) await this.readOuterTar('gzip');
    else if (isTarHeader(head)) await this.readOuterTar('none');
    else throw formatError(this.label, 'not an ipk, deb, OCI bundle or encrypted package');
    return this.finish();
  }

  private place(member: string): StreamPlace {
    return { file: this.label, member };
  }

  private async readAr(): Promise<void> {
    const list: ArMember[] = [];
    for await (const m of readArMembers(this.path)) list.push(m);
    const names = list.map((m) => m.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) throw new OverlayBootError('PKG_MEMBER_DUPLICATE', `member ${dup} appears twice`, this.place(dup));
    // The documented rule: an ar archive is an ipk when its members are exactly
    // debian-binary, control.tar.gz, data.tar.gz (in that order), optionally followed
    // by checksums and signature.sig, and it is signed or its names carry GNU ar's `/`
    // (binutils ar and opkg-build write it; dpkg-deb does not). Anything else valid is a deb.
    const ipkShape = names.length >= 3 && names.every((n, i) => n === IPK_MEMBERS[i]);
    const isIpk = ipkShape && (names.length > 3 || list.every((m) => m.gnuName));
    if (names[0] !== 'debian-binary') throw formatError(this.label, 'the first ar member is not debian-binary', names[0]);
    if (!isIpk) {
      if (!names[1]?.startsWith('control.tar')) throw new OverlayBootError('PKG_MEMBER_MISSING', 'the second ar member is not control.tar', this.place('control.tar'));
      if (!names[2]?.startsWith('data.tar')) throw new OverlayBootError('PKG_MEMBER_MISSING', 'the third ar member is not data.tar', this.place('data.tar'));
      const odd = names.slice(1, 3).find((n) => compressionOfName(n) === undefined);
      if (odd !== undefined) throw formatError(this.label, `${odd}: not tar, tar.gz, tar.xz or tar.zst`, odd);
      const extra = names.slice(3).find((n) => !n.startsWith('_'));
      if (extra !== undefined) throw formatError(this.label, `unexpected member ${extra} in a deb`, extra);
    }
    this.raw.format = isIpk ? 'ipk' : 'deb';
    if (isIpk) this.raw.container = 'ar';
    for (const m of list) {
      await this.member(m.name, m.size, arMemberStream(this.path, m));
    }
  }

  private async readOuterTar(compression: 'gzip' | 'none'): Promise<void> {
    const source = createReadStream(this.path, { highWaterMark: CHUNK });
    const place = this.place('(outer tar)');
    const stream = pipeInto(decompress(source, compression, place), countBytes(this.outerBudget, '(outer tar)'));
    try {
      await walkTar(stream, place, async (e, body) => {
        const norm = normalizeMemberPath(e.path);
        if (typeof norm !== 'string') throw formatError(this.label, `outer member ${e.path}: ${norm.message}`, e.path);
        if (this.raw.format === undefined) {
          if (norm === '' && e.type === 'dir') return;
          if (norm === 'debian-binary') {
            this.raw.format = 'ipk';
            this.raw.container = 'tar';
          } else {
            this.raw.format = 'oci';
            this.ociTop = norm.split('/')[0]!;
          }
        }
        if (this.raw.format === 'oci') {
          await this.ociEntry(this.ociTop!, norm, e, body);
          return;
        }
        if (norm === '' && e.type === 'dir') return;
        if (this.seenMembers.has(norm)) throw new OverlayBootError('PKG_MEMBER_DUPLICATE', `member ${norm} appears twice`, this.place(norm));
        if (e.type !== 'file') throw formatError(this.label, `outer member ${e.path} is not a regular file`, e.path);
        if (!IPK_MEMBERS.includes(norm)) throw formatError(this.label, `unexpected member ${e.path} in an ipk`, e.path);
        await this.member(norm, e.size, Readable.from(body));
      });
    } finally {
      source.destroy();
    }
  }

  /** One outer member: size cap, sha256 as stored, then what its name says it holds. */
  private async member(name: string, size: number, source: Readable): Promise<void> {
    const place = this.place(name);
    try {
      if (this.seenMembers.has(name)) throw new OverlayBootError('PKG_MEMBER_DUPLICATE', `member ${name} appears twice`, place);
      this.seenMembers.add(name);
      if (size > this.maxMember) {
        throw new OverlayBootError('PKG_TOO_LARGE', `member is ${size} bytes, above the cap of ${this.maxMember}`, place);
      }
      const hash = createHash('sha256');
      const hashed = new Transform({ transform: (c: Buffer, _e, cb) => { hash.update(c); cb(null, c); } });
      pipeInto(source, hashed);
      const compression = compressionOfName(name);
      if (name === 'debian-binary') {
        const text = (await readCapped(hashed, 64, place)).toString('latin1');
        if (!/^2\.\d+\n?$/.test(text)) throw formatError(this.label, `debian-binary says ${JSON.stringify(text.slice(0, 16))}, not 2.x`, name);
      } else if (name.startsWith('control.tar') && compression) {
        await walkTar(this.unpacked(hashed, compression, name), place, (e, body) => this.controlEntry(e, body));
      } else if (name.startsWith('data.tar') && compression) {
        await walkTar(this.unpacked(hashed, compression, name), place, (e, body) => this.dataEntry(e, e.path, body));
      } else if (name === 'checksums') {
        this.raw.checksums = await readCapped(hashed, SIG_CAP, place);
      } else if (name === 'signature.sig') {
        this.raw.signature = await readCapped(hashed, SIG_CAP, place);
      } else {
        for await (const chunk of hashed) void chunk;
      }
      this.raw.members.push({ name, size, sha256: hash.digest('hex') });
    } finally {
      source.destroy();
    }
  }

  private unpacked(input: Readable, compression: ReturnType<typeof compressionOfName> & string, member: string): Readable {
    return pipeInto(decompress(input, compression, this.place(member)), countBytes(this.budget, member));
  }

  private async controlEntry(e: TarEntry, body: AsyncIterable<Buffer>): Promise<void> {
    const norm = normalizeMemberPath(e.path);
    if (typeof norm !== 'string' || e.type !== 'file') return;
    if (norm !== 'control' && norm !== 'conffiles' && !SCRIPTS.includes(norm)) return;
    const place = this.place(norm);
    if (this.seenControl.has(norm)) throw new OverlayBootError('PKG_MEMBER_DUPLICATE', `${norm} appears twice in the control tarball`, place);
    this.seenControl.add(norm);
    const text = (await readCapped(body, SMALL_CAP, place)).toString('utf8');
    if (norm === 'control') this.controlText = text;
    else if (norm === 'conffiles') this.conffilesText = text;
    else this.raw.scripts[norm as MaintainerScript] = text;
  }

  private async dataEntry(e: TarEntry, path: string, body: AsyncIterable<Buffer>): Promise<void> {
    const { file, problems } = this.guard.check(e, path);
    if (problems.length > 0) {
      if (this.sink) throw problemError(problems[0]!, this.label);
      this.raw.problems.push(...problems);
    }
    if (file.path === '') return;
    this.raw.files.push(file);
    this.raw.installedSize += file.size;
    if (this.sink && problems.length === 0) await this.sink.entry(file, body);
  }

  private async ociEntry(top: string, norm: string, e: TarEntry, body: AsyncIterable<Buffer>): Promise<void> {
    const [first, ...rest] = norm.split('/');
    if (first !== top) throw formatError(this.label, `OCI bundle holds ${e.path} outside ${top}/`, e.path);
    const inner = rest.join('/');
    // The outer tar is the data here, so its bytes count against the unpacked cap.
    this.budget.take(e.size, e.path);
    if (inner === 'config.json' && e.type === 'file') {
      const text = (await readCapped(body, SMALL_CAP, this.place(e.path))).toString('utf8');
      try {
        this.raw.oci = { config: JSON.parse(text) };
      } catch (cause) {
        throw new OverlayBootError('PKG_BAD_CONTROL', 'config.json is not valid JSON', { ...this.place(e.path), cause });
      }
    } else if (inner === 'rootfs' || inner.startsWith('rootfs/')) {
      this.sawRootfs = true;
      const prefix = `${top}/rootfs/`;
      const link = e.type === 'hardlink' && e.linkpath !== undefined
        ? (normalizeMemberPath(e.linkpath) as string) : undefined;
      const entry: TarEntry = typeof link === 'string' && `${link}/`.startsWith(prefix)
        ? { ...e, linkpath: link.slice(prefix.length) } : e;
      await this.dataEntry(entry, inner === 'rootfs' ? '' : inner.slice('rootfs/'.length), body);
    }
  }

  private finish(): RawPackage {
    const r = this.raw;
    const format = r.format;
    if (format === undefined) throw formatError(this.label, 'the archive is empty');
    if (format === 'oci') return this.finishOci(r);
    for (const want of ['debian-binary', 'control.tar', 'data.tar']) {
      if (!r.members.some((m) => m.name.startsWith(want))) {
        throw new OverlayBootError('PKG_MEMBER_MISSING', `the package has no ${want} member`, this.place(want));
      }
    }
    if (this.controlText === undefined) throw new OverlayBootError('PKG_MEMBER_MISSING', 'the control tarball has no control file', this.place('control'));
    const control = parseControl(this.controlText, { file: this.label, member: 'control' });
    const conffiles = this.conffilesText === undefined ? [] : parseConffiles(this.conffilesText, { file: this.label });
    return { ...r, format, control, conffiles } as RawPackage;
  }

  private finishOci(r: typeof this.raw): RawPackage {
    if (r.oci === undefined && !this.sawRootfs) throw formatError(this.label, 'a tar that is neither an ipk nor an OCI bundle (NAME/config.json, NAME/rootfs/)');
    if (r.oci === undefined) throw new OverlayBootError('PKG_MEMBER_MISSING', 'the OCI bundle has no config.json', this.place('config.json'));
    const top = this.ociName();
    const config = r.oci.config as { annotations?: Record<string, unknown> } | null;
    const ann = config !== null && typeof config === 'object' && config.annotations && typeof config.annotations === 'object' ? config.annotations : {};
    const version = typeof ann['org.opencontainers.image.version'] === 'string' ? ann['org.opencontainers.image.version'] : '0';
    const arch = typeof ann['org.opencontainers.image.architecture'] === 'string' ? ann['org.opencontainers.image.architecture'] : 'all';
    const text = `Package: ${top}\nVersion: ${version}\nArchitecture: ${arch}\n`;
    if (/\n/.test(version + arch)) throw new OverlayBootError('PKG_BAD_CONTROL', 'OCI annotation holds a newline', this.place('config.json'));
    const control = parseControl(text, { file: this.label, member: 'config.json' });
    return { ...r, format: 'oci', control, conffiles: [], scripts: {} } as RawPackage;
  }

  private ociName(): string {
    if (!this.sawRootfs) throw new OverlayBootError('PKG_MEMBER_MISSING', 'the OCI bundle has no rootfs/', this.place('rootfs'));
    return this.ociTop ?? '';
  }
}
