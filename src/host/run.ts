
export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Run a short host command (ip, ifup) and collect its output. Written on
 * node:child_process rather than execa because the boot path runs it a few
 * times and execa costs about 80 ms to import (bench/boot.js); hooks and '!'
 * commands, which need process-group kills, still use execa.
 */
export function runCommand(cmd: string, args: string[], options: { input?: string; timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<RunResult> {
  return new Promise((resolve) => {
    // node:child_process is loaded here, not imported: commands that never spawn skip its ~4 ms.
    const child = process.getBuiltinModule('node:child_process').spawn(cmd, args, { stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: options.env });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, options.timeoutMs);
    child.stdout!.on('data', (d) => { stdout += d; });
    child.stderr!.on('data', (d) => { stderr += d; });
    child.once('error', (e) => { clearTimeout(timer); resolve({ code: null, stdout, stderr: stderr || e.message, timedOut }); });
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr, timedOut }); });
    if (options.input !== undefined) {
      child.stdin!.on('error', () => { /* the command may exit without reading */ });
      child.stdin!.end(options.input);
    }
  });
}
