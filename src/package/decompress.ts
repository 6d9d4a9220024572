/**
 * Streaming decompression of package members (gzip with node:zlib, xz with
 * xz-decompress, zstd with fzstd) and a byte counter that stops a
 * decompression bomb at the cap while the bytes come out.
 */
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import { OverlayBootError } from '../errors.js';

/** Read and inflate in large chunks: every chunk crosses several streams, and fewer cost less. */
export const CHUNK = 256 * 1024;

export type Compression = 'none' | 'gzip' | 'xz' | 'zstd';

/** The compression a member name says (`control.tar.xz` → xz); undefined when it is not a tar name. */
export function compressionOfName(name: string): Compression | undefined {
  const m = /\.tar(\.gz|\.xz|\.zst)?$/.exec(name);
  if (!m) return undefined;
  return m[1] === '.gz' ? 'gzip' : m[1] === '.xz' ? 'xz' : m[1] === '.zst' ? 'zstd' : 'none';
}

/** Where a failure is reported: the package file and the member. */
export interface StreamPlace {
  file: string;
  member: string;
}

function corrupt(place: StreamPlace, what: string, cause: unknown): OverlayBootError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new OverlayBootError('PKG_CORRUPT', `${what}: ${detail}`, { ...place, cause });
}

/** fzstd as a Transform; its errors are thrown inside push, so they are caught here. */
class ZstdTransform extends Transform {
  private readonly z: ZstdDecompress;
  private sawFinal = false;

  constructor() {
    super();
    this.z = new ZstdDecompress((data, final) => {
      if (data.length > 0) this.push(Buffer.from(data.buffer, data.byteOffset, data.length));
      if (final) this.sawFinal = true;
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.z.push(chunk);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.z.push(new Uint8Array(0), true);
      cb(this.sawFinal ? null : new Error('zstd stream ended before its last frame'));
    } catch (e) {
      cb(e as Error);
    }
  }
}

/** `src.pipe(dst)`, and an error of `src` destroys `dst` with it (pipe alone drops it). */
export function pipeInto<T extends NodeJS.WritableStream & Readable>(src: Readable, dst: T): T {
  src.on('error', (e) => dst.destroy(e));
  return src.pipe(dst);
}

/**
 * `input` decompressed. Errors from the decoder come out of the returned stream
 * as PKG_CORRUPT naming the member; the input's own errors pass through.
 */
export function decompress(input: Readable, compression: Compression, place: StreamPlace): Readable {
  let out: Readable;
  if (compression === 'none') return input;
  if (compression === 'gzip') {
    out = pipeInto(input, createGunzip({ chunkSize: CHUNK }));
  } else if (compression === 'zstd') {
    out = pipeInto(input, new ZstdTransform());
  } else {
    out = xzDecompress(input);
  }
  return wrapErrors(out, place, `${compression} data is corrupt or truncated`);
}

/**
 * xz-decompress works on web streams; its errors reject the web reader, which
 * fromWeb turns into 'error'. Loaded on first use: its WebAssembly costs 8 MB of
 * memory that packages without xz need not pay.
 */
function xzDecompress(input: Readable): Readable {
  const out = new PassThrough();
  import('xz-decompress').then((xz) => {
    const web = new xz.default.XzReadableStream(Readable.toWeb(input) as ReadableStream<Uint8Array>);
    pipeInto(Readable.fromWeb(web as import('node:stream/web').ReadableStream), out);
  }).catch((e: unknown) => out.destroy(e instanceof Error ? e : new Error(String(e))));
  return out;
}

/** Re-emits any error other than an OverlayBootError as PKG_CORRUPT. */
function wrapErrors(s: Readable, place: StreamPlace, what: string): Readable {
  const pass = new Transform({ transform: (chunk, _e, cb) => cb(null, chunk) });
  s.on('error', (e) => pass.destroy(e instanceof OverlayBootError ? e : corrupt(place, what, e)));
  // pass is what the caller listens on; s's own error event is handled above
  return s.pipe(pass);
}

/** A shared budget of unpacked bytes; `take` throws PKG_TOO_LARGE when it is spent. */
export class ByteBudget {
  used = 0;

  constructor(readonly cap: number, readonly file: string) {}

  take(n: number, member: string): void {
    this.used += n;
    if (this.used > this.cap) {
      throw new OverlayBootError('PKG_TOO_LARGE', `unpacked data exceeds the cap of ${this.cap} bytes`, {
        file: this.file, member, expected: `at most ${this.cap} bytes`, found: `more than ${this.cap}`,
      });
    }
  }
}

/** A pass-through that charges every byte to `budget`, failing the stream at the cap. */
export function countBytes(budget: ByteBudget, member: string): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      try {
        budget.take(chunk.length, member);
        cb(null, chunk);
      } catch (e) {
        cb(e as Error);
      }
    },
  });
}
