/**
 * Walks a tar stream with node-tar's Parser, strictly (a bad checksum, a bad
 * header or a truncated archive is PKG_CORRUPT), one entry at a time: the next
 * entry is handed out only after the handler of the previous one has finished,
 * and entry bodies stream (node-tar holds back the input while a body waits).
 */
import type { Readable } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { OverlayBootError } from '../errors.js';
import type { DataFile, DataFileType } from './types.js';
import type { StreamPlace } from './decompress.js';

const TYPES: Record<string, DataFileType> = {
  File: 'file', OldFile: 'file', ContiguousFile: 'file', Directory: 'dir', SymbolicLink: 'symlink',
  Link: 'hardlink', CharacterDevice: 'char', BlockDevice: 'block', FIFO: 'fifo',
};

/** One tar entry as stored (path not yet normalised, link target as `linkpath`). */
export interface TarEntry extends Omit<DataFile, 'linkTarget'> {
  linkpath?: string;
}

/** The handler for one entry; it may read `body` (async-iterable Buffers) or leave it to be drained. */
export type TarEntryHandler = (entry: TarEntry, body: AsyncIterable<Buffer>) => Promise<void> | void;

const GZIP_MAGIC = [0x1f, 0x8b];

/**
 * Reads the (already decompressed) tar `input`, calling `onEntry` for each
 * entry in order. Resolves when all are handled; rejects with the first error
 * (PKG_CORRUPT for the archive, or what a handler threw) and destroys `input`.
 */
export function walkTar(input: Readable, place: StreamPlace, onEntry: TarEntryHandler): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let failed = false;
    let chain: Promise<void> = Promise.resolve();
    let first = true;
    let current: ReadEntry | undefined;
    // zstd:false and the gzip check below: node-tar would otherwise decompress a second
    // layer by itself, past our byte budget.
    const parser = new Parser({ strict: true, zstd: false, brotli: false, maxMetaEntrySize: 1024 * 1024 });
    // The entry's bytes, stopping at the failure. Minipass's iterator waits forever when
    // the entry was destroyed before a read, so `failed` is checked right before each one
    // (in the same tick as the read registers for the destroy event).
    async function* body(entry: ReadEntry): AsyncGenerator<Buffer> {
      const stopped = () => new OverlayBootError('PKG_CORRUPT', 'reading stopped by an earlier failure', place);
      const it = (entry as unknown as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      try {
        for (;;) {
          if (failed) throw stopped();
          const r = await it.next();
          if (r.done) break;
          yield r.value;
        }
      } finally {
        await it.return?.();
      }
      if (failed) throw stopped();
    }
    const fail = (e: unknown) => {
      if (failed) return;
      failed = true;
      input.destroy();
      parser.abort?.(e instanceof Error ? e : new Error(String(e)));
      // End the body a handler may be reading, then wait for that handler to finish:
      // the caller (unpack) removes what was written only when nothing writes any more.
      // (the parser may still write to it: Minipass then emits an error nobody else hears)
      current?.on('error', () => undefined);
      current?.destroy();
      const err = e instanceof OverlayBootError ? e
        : new OverlayBootError('PKG_CORRUPT', `tar archive: ${e instanceof Error ? e.message : String(e)}`, { ...place, cause: e });
      chain.then(() => reject(err), () => reject(err));
    };
    parser.on('error', fail);
    parser.on('ignoredEntry', (entry: ReadEntry) => {
      fail(new OverlayBootError('PKG_CORRUPT', `tar entry of unsupported type ${entry.type}`, { ...place, member: `${place.member}:${entry.path}` }));
    });
    parser.on('entry', (entry: ReadEntry) => {
      const type = TYPES[entry.type];
      chain = chain.then(async () => {
        if (failed) return;
        current = entry;
        if (type === undefined) {
          throw new OverlayBootError('PKG_CORRUPT', `tar entry of unsupported type ${entry.type}`, { ...place, member: `${place.member}:${entry.path}` });
        }
        await onEntry({
          path: entry.path, type, mode: (entry.mode ?? 0) & 0o7777, uid: entry.uid ?? 0, gid: entry.gid ?? 0,
          size: entry.size, linkpath: entry.linkpath,
          ...(type === 'char' || type === 'block' ? { device: { major: entry.header.devmaj ?? 0, minor: entry.header.devmin ?? 0 } } : {}),
        }, body(entry));
        entry.resume();
        current = undefined;
      });
      chain.catch(fail);
    });
    parser.on('end', () => {
      chain.then(() => { if (!failed) resolve(); }, fail);
    });
    input.on('error', fail);
    input.on('data', (chunk: Buffer) => {
      if (failed) return;
      if (first) {
        first = false;
        if (chunk[0] === GZIP_MAGIC[0] && chunk[1] === GZIP_MAGIC[1]) {
          fail(new OverlayBootError('PKG_CORRUPT', 'compressed data inside the decompressed tar', place));
          return;
        }
      }
      if (!parser.write(chunk)) input.pause();
    });
    parser.on('drain', () => { if (!failed) input.resume(); });
    input.on('end', () => { if (!failed) parser.end(); });
  });
}
