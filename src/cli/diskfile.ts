import { parseArgs } from 'node:util';
import { MOUNTS_ENV } from '../config/bang.js';
import { diskfileMount } from '../commands/diskfile.js';
import { isOverlayBootError } from '../errors.js';
import { processIO, type CliIO } from './io.js';
import { EXIT_USAGE, formatError } from './report.js';

const USAGE = `usage: overlay-diskfile MOUNT/PATH [DISKFILE [INDEX]]
  MOUNT/PATH  mount point directory MOUNT (up to the first /, or up to //) and a path in it
  DISKFILE    raw disk image to mount on MOUNT when ACTION=overlay-boot
  INDEX       1-based partition of DISKFILE (MBR or GPT); without it the whole image
Prints the absolute MOUNT/PATH. Meant for '!' values: LOWER=!overlay-diskfile mnt/ disk.img 2
A mount it makes is first appended to the file named by ${MOUNTS_ENV}, if set.
`;

export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: { help: { type: 'boolean', short: 'h' } },
    }));
  } catch (e) {
    io.stderr(`overlay-diskfile: ${(e as Error).message}\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (values.help) { io.stdout(USAGE); return 0; }
  if (positionals.length < 1 || positionals.length > 3) { io.stderr(USAGE); return EXIT_USAGE; }
  const [arg, diskfile, indexText] = positionals as [string, string?, string?];
  if (indexText !== undefined && !/^[1-9][0-9]{0,8}$/.test(indexText)) {
    io.stderr(`overlay-diskfile: INDEX must be a partition number from 1 on, not \`${indexText}\`\n${USAGE}`);
    return EXIT_USAGE;
  }
  try {
    const r = await diskfileMount(arg, {
      diskfile, index: indexText === undefined ? undefined : Number(indexText), action: io.env.ACTION, cwd: process.cwd(),
      reportTo: io.env[MOUNTS_ENV],
    });
    io.stdout(`${r.path}\n`);
    return 0;
  } catch (e) {
    io.stderr(formatError('overlay-diskfile', e));
    return isOverlayBootError(e) && e.code === 'USAGE' ? EXIT_USAGE : 1;
  }
}
