/** Linux's IFNAMSIZ is 16 bytes including the terminating NUL. */
export const MAX_IFNAME_BYTES = 15;

/**
 * Why `name` cannot be a Linux network interface name, or undefined when it can.
 * Mirrors the kernel's dev_valid_name(): 1..15 bytes, not `.` or `..`, no `/`, `:`
 * or white space.
 */
export function ifnameProblem(name: string): string | undefined {
  const bytes = Buffer.byteLength(name);
  if (bytes === 0) return 'is empty';
  if (bytes > MAX_IFNAME_BYTES) return `is ${bytes} bytes long; Linux allows at most ${MAX_IFNAME_BYTES}`;
  if (name === '.' || name === '..') return 'may not be "." or ".."';
  if (/[/:\s\0]/.test(name)) return 'may not contain "/", ":" or white space';
  return undefined;
}
