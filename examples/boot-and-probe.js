#!/usr/bin/env node
// Boot a subhost, probe it, print the result, stop it.
//
//   node examples/boot-and-probe.js CONF --port 22        wait until TCP port 22 listens inside
//   node examples/boot-and-probe.js CONF -- cat /etc/hostname   run a command inside (nsenter)
//
// Uses only the public API of overlay-boot (build first: npm run build).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { boot, stopByName, isOverlayBootError } from '../dist/index.js';

const run = promisify(execFile);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Is TCP PORT listening in the network namespace of PID? Read from the host: /proc/PID/net/tcp{,6}. */
function listening(pid, port) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['tcp', 'tcp6']) {
    let text;
    try { text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8'); } catch { continue; }
    // state 0A is LISTEN; local_address is ADDR:PORT in hex.
    if (text.split('\n').slice(1).some((l) => { const f = l.trim().split(/\s+/); return f[1]?.endsWith(`:${hex}`) && f[3] === '0A'; })) return true;
  }
  return false;
}

const args = process.argv.slice(2);
const dash = args.indexOf('--');
const command = dash >= 0 ? args.slice(dash + 1) : [];
const opts = dash >= 0 ? args.slice(0, dash) : args;
const conf = opts[0];
const portAt = opts.indexOf('--port');
const port = portAt >= 0 ? Number(opts[portAt + 1]) : undefined;
const timeoutMs = Number(process.env.PROBE_TIMEOUT_MS ?? 10000);
if (!conf || (port === undefined && command.length === 0) || (port !== undefined && !(port > 0 && port < 65536))) {
  process.stderr.write('usage: boot-and-probe.js CONF (--port PORT | -- COMMAND...)\n');
  process.exit(2);
}

let status = 0;
let booted;
try {
  booted = await boot(conf);
  console.log(`booted ${booted.name}: pid 1 is ${booted.pid1}`);
  if (port !== undefined) {
    const end = Date.now() + timeoutMs;
    while (!listening(booted.pid1, port) && Date.now() < end) await sleep(50);
    const ok = listening(booted.pid1, port);
    console.log(ok ? `port ${port} is listening in ${booted.name}` : `port ${port} did not open within ${timeoutMs} ms`);
    if (!ok) status = 1;
  }
  if (command.length > 0) {
    // Every namespace of pid 1, and its root: the same view a process of the subhost has.
    const r = await run('nsenter', ['-t', String(booted.pid1), '-m', '-u', '-i', '-n', '-p', '-r', '-w', ...command],
      { timeout: timeoutMs }).catch((e) => { status = 1; return e; });
    process.stdout.write(r.stdout ?? '');
    if (status) console.log(`command failed: ${r.message ?? r}`);
  }
} catch (e) {
  console.error(isOverlayBootError(e) ? `${e.describe()} [${e.code}]` : String(e));
  status = 1;
} finally {
  if (booted) {
    await stopByName(booted.name);
    console.log(`stopped ${booted.name}`);
  }
}
process.exitCode = status;
