// overlay-pkgd as a process (its main() from the sources, in a child node): foreground,
// one log line per connection, SIGTERM and SIGINT close and remove the socket and exit 0;
// a second daemon on the same socket is refused; usage.
import t, { type Test } from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { main } from '../../src/cli/pkgd.js';
import { capture } from '../helpers/cli.js';
import { srcModule, startChild } from '../lifecycle/child.js';
import { Client, tempDir, testConfig, until } from './helpers.js';

const DAEMON = `import { main } from ${srcModule('cli/pkgd.ts')}; import { runMain } from ${srcModule('cli/io.ts')}; runMain(main);`;

interface Running { child: ChildProcess; err: () => string; exited: Promise<number | null> }

function start(t: Test, args: string[]): Running {
  // runMain reads process.argv from index 2; in a node -e child the arguments start at 1
  const child = startChild(DAEMON, ['overlay-pkgd', ...args]);
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL'); });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, err: () => err, exited };
}

function configFile(dir: string): { file: string; socket: string } {
  const config = testConfig(dir);
  const file = path.join(dir, 'pkg.ini');
  writeFileSync(file, `[paths]\nstate = ${config.paths.state}\ntemplates = ${config.paths.templates}\nsocket = ${config.paths.socket}\n`);
  return { file, socket: config.paths.socket };
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`runs in the foreground, logs connections, ${signal} removes the socket and exits 0`, async (t) => {
    const dir = tempDir(t);
    const { file, socket } = configFile(dir);
    const d = start(t, ['--config', file]);
    t.ok(await until(() => /listening on /.test(d.err()), 30000), `listening: ${d.err()}`);
    const c = await Client.connect(t, socket);
    t.same((await c.call('du.list')).result, []);
    t.match(d.err(), /^\S+Z overlay-pkgd: connection 1 from pid \d+ uid 0 gid 0$/m, 'one line for the connection');

    const second = start(t, ['--config', file]);
    t.equal(await second.exited, 1, 'a second daemon exits 1');
    t.match(second.err(), /overlay-pkgd: .*another overlay-pkgd listens on this socket.*\[PKG_DAEMON_RUNNING\]/);
    t.ok(existsSync(socket), 'and leaves the first one\'s socket');

    process.kill(d.child.pid!, signal);
    t.equal(await d.exited, 0, 'exit 0');
    t.notOk(existsSync(socket), 'the socket file is removed');
    t.ok(await c.waitClosed(), 'the client is disconnected');
    t.match(d.err(), new RegExp(`${signal}: stopping`));
  });
}

t.test('usage', async (t) => {
  const help = capture({});
  t.equal(await main(['--help'], help), 0);
  t.match(help.out, /^usage: overlay-pkgd /);
  const bad = capture({});
  t.equal(await main(['--frob'], bad), 2);
  t.match(bad.err, /usage: overlay-pkgd/);
  const missing = capture({});
  t.equal(await main(['--config', '/nonexistent/pkg.ini'], missing), 1);
  t.match(missing.err, /PKG_CONFIG_INVALID/);
});
