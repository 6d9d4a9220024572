// overlay-pkg install / remove / list: --json keys (TR-181 names, Subhost, changed), exit
// statuses, RetainData, and 8 concurrent installs by 8 processes of bin/overlay-pkg.js.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/pkg.js';
import { capture } from '../helpers/cli.js';
import { buildDu, makeDuEnv, runInside, serviceScript, type DuEnv } from '../helpers/du.js';
import { uniqueName } from '../helpers/subhost.js';

const BIN = fileURLToPath(new URL('../../bin/overlay-pkg.js', import.meta.url));

async function pkg(env: DuEnv, argv: string[]): Promise<{ code: number; json: Record<string, unknown>; err: string }> {
  const io = capture(env.env);
  const code = await main(argv, io);
  return { code, json: io.out.trim().startsWith('{') ? JSON.parse(io.out) as Record<string, unknown> : {}, err: io.err };
}

t.test('--json of install, a repeated install, list and remove --retain-data', async (t) => {
  const env = makeDuEnv(t);
  const name = uniqueName('cj');
  const file = buildDu(env, { name: 'cli-demo', data: { 'etc/init.d/svc': serviceScript('svc') } });
  const ins = await pkg(env, ['install', file, '--name', name, '--json']);
  t.equal(ins.code, 0, ins.err);
  t.match(ins.json, {
    changed: true, OperationPerformed: 'Install', CurrentState: 'Installed', Subhost: name, Name: 'cli-demo', Version: '1.0',
    UUID: /^[0-9a-f-]{36}$/, DUID: /^[0-9]+$/, ExecutionEnvRef: 'bee', Resolved: true, Status: 'Installed',
    ExecutionUnitList: [`${name}/svc`], ExecutionUnit: [{ EUID: `${name}/svc`, Status: 'Active', AutoStart: true, ExecutionFaultCode: 'NoFault' }],
  });
  t.notOk('Fault' in ins.json);
  const again = await pkg(env, ['install', file, '--json']);
  t.equal(again.code, 0, 'a byte-identical install exits 0');
  t.match(again.json, { changed: false, CurrentState: 'Failed', Subhost: name, Fault: { FaultCode: 9026 } });
  const bad = await pkg(env, ['install', buildDu(env, { signed: false, name: 'other' }), '--json']);
  t.equal(bad.code, 1);
  t.match(bad.json, { changed: false, CurrentState: 'Failed', Fault: { FaultCode: 7036, FaultString: /PKG_UNSIGNED/ } });
  const usage = await pkg(env, ['install']);
  t.equal(usage.code, 2, 'bad usage exits 2');
  const list = await pkg(env, ['list', '--json']);
  t.match(list.json, { changed: false, DeploymentUnit: [{ Subhost: name, Name: 'cli-demo', running: true }] });
  // Runtime data in UPPER, kept by --retain-data and found again by an install with that NAME.
  t.equal(runInside(name, ['sh', '-c', 'echo mine > /root/data.txt']).status, 0);
  const rm = await pkg(env, ['remove', name, '--retain-data', '--json']);
  t.equal(rm.code, 0, rm.err);
  t.match(rm.json, { changed: true, OperationPerformed: 'Uninstall', CurrentState: 'Uninstalled', Subhost: name });
  t.ok(existsSync(path.join(env.state, 'retained', name, 'root/data.txt')), 'UPPER retained');
  const back = await pkg(env, ['install', file, '--name', name, '--json']);
  t.equal(back.code, 0, back.err);
  t.equal(runInside(name, ['cat', '/root/data.txt']).stdout, 'mine\n', 'the retained data is back');
  const unknown = await pkg(env, ['remove', 'nosuchdu', '--json']);
  t.equal(unknown.code, 1);
  t.match(unknown.json, { CurrentState: 'Failed', Fault: { FaultCode: 9028 } });
  const gone = await pkg(env, ['remove', name, '--json']);
  t.equal(gone.code, 0);
  t.same(readdirSync(env.state).sort(), ['history.jsonl', 'journal.json', 'lock'], 'only history, lock and an empty journal');
});

t.test('8 concurrent installs of different packages by 8 processes all succeed (they queue)', { skip: !existsSync(path.join(path.dirname(BIN), '../dist/bin/overlay-pkg.mjs')) && 'npm run build first' }, async (t) => {
  const env = makeDuEnv(t);
  const files = Array.from({ length: 8 }, (_, i) => buildDu(env, { name: `conc${i}`, data: { [`usr/share/conc${i}/f`]: `${i}\n` } }));
  const names = files.map((_, i) => `${uniqueName('cc')}${i}`.slice(0, 12));
  const results = await Promise.all(files.map((f, i) => new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, 'install', f, '--name', names[i]!, '--json'], { env: env.env });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    child.on('close', (code) => resolve({ code, out, err }));
  })));
  results.forEach((r, i) => {
    t.equal(r.code, 0, `install ${i}: ${r.err}`);
    t.match(JSON.parse(r.out || '{}'), { CurrentState: 'Installed', Subhost: names[i] });
  });
  for (const [i, name] of names.entries()) t.equal(runInside(name, ['cat', `/usr/share/conc${i}/f`]).stdout, `${i}\n`);
  for (const name of names) t.equal((await pkg(env, ['remove', name])).code, 0);
  t.same(readdirSync(env.state).sort(), ['history.jsonl', 'journal.json', 'lock']);
});
