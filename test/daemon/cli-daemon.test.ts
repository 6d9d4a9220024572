// overlay-pkg with a daemon and without: the same commands (install, a byte-identical
// install, stop, start, restart, update, a refused update, remove, a refused remove, a
// missing file), text and --json, print the same lines and exit with the same status;
// with a daemon they ran in its queue (the history says so). As root, under the root lock.
import t, { type Test } from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { main } from '../../src/cli/pkg.js';
import { History } from '../../src/lifecycle/history.js';
import { buildDu, makeDuEnv, serviceScript, type DuEnv } from '../helpers/du.js';
import { capture } from '../helpers/cli.js';
import { uniqueName } from '../helpers/subhost.js';
import { socketIni } from './cli-helpers.js';
import { startDaemon } from './helpers.js';

interface Step { code: number; out: string; err: string }

/** A lifecycle world whose pkg.ini names a socket in its directory. */
function world(t: Test): { env: DuEnv; socket: string; cli: NodeJS.ProcessEnv } {
  const env = makeDuEnv(t);
  const { socket, ini } = socketIni(env);
  return { env, socket, cli: { ...process.env, OVERLAY_PKG_CONFIG: ini } };
}

/** Runs the same commands in `w`; each one's exit status and output, with the world's directory as DIR. */
async function session(w: ReturnType<typeof world>, name: string): Promise<Step[]> {
  // named alike in both worlds: the outputs name them
  const pkg = (version: string) => buildDu(w.env, { name: 'clidemo', version, file: `clidemo_${version}.ipk`, data: { 'etc/init.d/svc': serviceScript('clidemosvc') } });
  const v1 = pkg('1.0');
  const v2 = pkg('2.0');
  const eu = `${name}/svc`;
  const commands = [
    ['install', v1, '--name', name],
    ['install', v1, '--name', name, '--json'],
    ['stop', eu, '--json'],
    ['stop', eu],
    ['start', eu],
    ['restart', eu, '--json'],
    ['update', name, v2, '--json'],
    ['update', name, v2],
    ['remove', name],
    ['remove', name, '--json'],
    ['install', path.join(w.env.dir, 'missing.ipk'), '--json'],
  ];
  const steps: Step[] = [];
  for (const args of commands) {
    const io = capture(w.cli);
    const code = await main(args, io);
    const norm = (s: string) => s.split(w.env.dir).join('DIR');
    steps.push({ code, out: norm(io.out), err: norm(io.err) });
  }
  return steps;
}

t.test('the same commands print the same with and without a daemon', async (t) => {
  const name = uniqueName('cd');
  const alone = world(t);
  const withDaemon = world(t);
  const a = await session(alone, name);
  t.same(a.map((s) => s.code), [0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1], `exit statuses alone: ${JSON.stringify(a)}`);
  t.match(a[0]!.out, new RegExp(`^installed clidemo 1\\.0 as subhost ${name} in bee: ${name}/svc Active\\n$`));
  t.match(a[3]!.out, /\(nothing to do\)/);
  t.match(a[7]!.err, /^overlay-pkg: fault \d+: /);

  const d = await startDaemon(t, { config: withDaemon.env.config, dir: withDaemon.env.dir, socketPath: withDaemon.socket });
  const b = await session(withDaemon, name);
  for (const [i, s] of a.entries()) t.same(b[i], s, `step ${i + 1}: the same status, stdout and stderr through the daemon`);

  const commands = new History(withDaemon.env.state).read().entries.map((e) => e.command);
  t.equal(commands.length, 11, 'eleven operations in the history (the refused ones too)');
  t.ok(commands.every((c) => c.startsWith('overlay-pkgd operation ')), `all ran in the daemon's queue: ${commands.join('; ')}`);
  t.ok(new History(alone.env.state).read().entries.every((e) => e.command.startsWith('overlay-pkg ')), 'and none alone');
  t.ok(d.logs.some((l) => /^connection \d+ from pid /.test(l)));
});

t.test('--no-daemon runs here though a daemon answers; --password-file needs --username', async (t) => {
  const w = world(t);
  await startDaemon(t, { config: w.env.config, dir: w.env.dir, socketPath: w.socket });
  const io = capture(w.cli);
  t.equal(await main(['remove', 'nosuchdu', '--no-daemon'], io), 1);
  t.match(io.err, /fault 9028/);
  t.match(new History(w.env.state).read().entries.map((e) => e.command), ['overlay-pkg remove nosuchdu'], 'run here');
  const usage = capture(w.cli);
  t.equal(await main(['install', '/x.ipk', '--password-file', '-'], usage), 2);
  t.match(usage.err, /--password-file needs --username/);
});

t.test('--username/--password-file: basic auth for a download, alone and through the daemon', async (t) => {
  const w = world(t);
  const file = buildDu(w.env, { name: 'authdemo', version: '1.0', file: 'authdemo_1.0.ipk' });
  const body = readFileSync(file);
  const server = http.createServer((req, res) => {
    if (req.headers.authorization !== `Basic ${Buffer.from('fleet:s3cret pass').toString('base64')}`) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="pkgs"' }).end();
      return;
    }
    res.writeHead(200, { 'Content-Length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/authdemo_1.0.ipk`;
  const good = path.join(w.env.dir, 'good.pw');
  const bad = path.join(w.env.dir, 'bad.pw');
  writeFileSync(good, 's3cret pass\n', { mode: 0o600 });
  writeFileSync(bad, 'wrong\n', { mode: 0o600 });

  const run = async (args: string[]) => {
    const io = capture(w.cli);
    return { code: await main(args, io), out: io.out, err: io.err };
  };
  const names = [uniqueName('au'), uniqueName('ad')];
  for (const [i, mode] of [['--no-daemon'], []].entries()) {
    if (i === 1) await startDaemon(t, { config: w.env.config, dir: w.env.dir, socketPath: w.socket });
    const refused = await run(['install', url, '--name', names[i]!, '--username', 'fleet', '--password-file', bad, '--json', ...mode]);
    t.equal(refused.code, 1, `a wrong password fails ${mode.join('')}`);
    t.match(JSON.parse(refused.out), { CurrentState: 'Failed', Fault: { FaultCode: 9012 } });
    const ok = await run(['install', url, '--name', names[i]!, '--username', 'fleet', '--password-file', good, ...mode]);
    t.equal(ok.code, 0, `the right one installs ${mode.join('')}: ${ok.err}`);
    t.match(ok.out, new RegExp(`^installed authdemo 1\\.0 as subhost ${names[i]!} in bee`));
    t.notMatch(ok.err + refused.err + refused.out, /s3cret/, 'the password is never printed');
    const removed = await run(['remove', names[i]!, ...mode]);
    t.equal(removed.code, 0, removed.err);
  }
  const commands = new History(w.env.state).read().entries.map((e) => e.command);
  t.ok(commands.slice(0, 3).every((c) => c.startsWith('overlay-pkg ')) && commands.slice(3).every((c) => c.startsWith('overlay-pkgd operation ')), `alone, then through the daemon: ${commands.join('; ')}`);
  t.notMatch(readFileSync(path.join(w.env.state, 'history.jsonl'), 'utf8'), /s3cret/, 'nor written to the history');
});
