/**
 * Newline-delimited messages from a stream, bounded: a line is kept as the chunks it
 * arrived in (views, not copies) until its newline, and never beyond `maxLineBytes`.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private bytes = 0;

  /** @param maxLineBytes the longest line, its newline excluded. */
  constructor(readonly maxLineBytes: number) {}

  /**
   * Feeds a chunk; calls `onLine` with each complete line (without its newline).
   * Returns false as soon as a line is longer than the cap (the rest is dropped).
   */
  push(chunk: Buffer, onLine: (line: Buffer) => void): boolean {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.bytes + piece.length > this.maxLineBytes) return this.overflow();
      onLine(this.parts.length ? Buffer.concat([...this.parts, piece]) : piece);
      this.parts = [];
      this.bytes = 0;
    }
    if (start < chunk.length) {
      this.bytes += chunk.length - start;
      if (this.bytes > this.maxLineBytes) return this.overflow();
      this.parts.push(chunk.subarray(start));
    }
    return true;
  }

  /** At the end of the stream: a last line without its newline, if any (within the cap, as push kept it). */
  end(onLine: (line: Buffer) => void): void {
    if (this.bytes > 0) onLine(Buffer.concat(this.parts));
    this.parts = [];
    this.bytes = 0;
  }

  private overflow(): false {
    this.parts = [];
    this.bytes = 0;
    return false;
  }
}
