/** What a command's main() may touch: tests pass their own. */
export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  isTTY?: boolean;
}

export const processIO: CliIO = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  isTTY: Boolean(process.stdout.isTTY),
};

/** Run a main() as the process: its return value is the exit status. */
export function runMain(main: (argv: string[], io: CliIO) => Promise<number>): void {
  main(process.argv.slice(2), processIO).then(
    (code) => { process.exitCode = code; },
    (e) => { process.stderr.write(`internal error: ${(e as Error).stack ?? e}\n`); process.exitCode = 70; },
  );
}
