import type { CliIO } from '../../src/cli/io.js';

/** A CliIO that keeps what a command's main() prints. */
export function capture(env: NodeJS.ProcessEnv = process.env): CliIO & { out: string; err: string } {
  const io = { out: '', err: '', env, stdout: (s: string) => { io.out += s; }, stderr: (s: string) => { io.err += s; } };
  return io;
}
