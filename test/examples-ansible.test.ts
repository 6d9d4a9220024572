// examples/ansible/overlay-pkg.yml run by ansible-playbook against localhost (-c local)
// with the real command: install, update, remove of a signed package, each run twice;
// the first run changes the DU (changed=1), the second finds it as asked (changed=0).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listDUs } from '../src/lifecycle/list.js';
import { buildDu, makeDuEnv, serviceScript } from './helpers/du.js';
import { uniqueName } from './helpers/subhost.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PLAYBOOK = path.join(ROOT, 'examples/ansible/overlay-pkg.yml');
const ansible = spawnSync('ansible-playbook', ['--version'], { encoding: 'utf8' });

t.test('the playbook installs, updates and removes, and a second run changes nothing', { skip: ansible.error ? 'ansible-playbook is not installed' : false }, async (t) => {
  const env = makeDuEnv(t);
  const name = uniqueName('an');
  const spec = { name: 'ansdemo', data: { 'etc/init.d/ansd': serviceScript(`ansd-${name}`), 'usr/share/ansdemo/hello': 'hello\n' } };
  const v1 = buildDu(env, { ...spec, version: '1.0' });
  const v2 = buildDu(env, { ...spec, version: '2.0' });
  // Ansible's own files (its home, temporary directories) in the test's directory
  const home = path.join(env.dir, 'ansible');
  mkdirSync(home);
  const run = (vars: Record<string, string>) => {
    const extra = { du_name: name, overlay_pkg: path.join(ROOT, 'bin/overlay-pkg.js'), overlay_pkg_config: env.configFile, du_become: 'false', ansible_python_interpreter: '/usr/bin/python3', ...vars };
    const r = spawnSync('ansible-playbook', ['-c', 'local', '-i', 'localhost,', PLAYBOOK, ...Object.entries(extra).flatMap(([k, v]) => ['-e', `${k}=${v}`])], {
      encoding: 'utf8', timeout: 120_000, cwd: env.dir,
      env: { ...process.env, HOME: home, ANSIBLE_HOME: home, ANSIBLE_LOCAL_TEMP: path.join(home, 'tmp'), ANSIBLE_REMOTE_TEMP: path.join(home, 'tmp'), ANSIBLE_NOCOLOR: '1', ANSIBLE_RETRY_FILES_ENABLED: '0' },
    });
    const recap = /^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/m.exec(r.stdout);
    return { status: r.status, out: r.stdout + r.stderr, changed: recap ? Number(recap[2]) : -1, failed: recap ? Number(recap[4]) : -1 };
  };
  const installed = async () => (await listDUs(env.state)).DeploymentUnit.find((d) => d.Subhost === name);

  const steps: Array<[string, Record<string, string>, (du: Awaited<ReturnType<typeof installed>>) => boolean]> = [
    ['install 1.0', { du_package: v1 }, (du) => du?.Version === '1.0' && du.EUs[0]?.Status === 'Active'],
    ['update to 2.0', { du_package: v2 }, (du) => du?.Version === '2.0' && du.EUs[0]?.Status === 'Active'],
    ['remove', { du_state: 'absent' }, (du) => du === undefined],
  ];
  for (const [what, vars, holds] of steps) {
    const first = run(vars);
    t.equal(first.status, 0, `${what}: ${first.out}`);
    t.equal(first.changed, 1, `${what}: the first run changes one thing`);
    t.ok(holds(await installed()), `${what}: the DU is as asked`);
    const second = run(vars);
    t.equal(second.status, 0, `${what} again: ${second.out}`);
    t.equal(second.failed, 0);
    t.equal(second.changed, 0, `${what} again: changed=0`);
    t.ok(holds(await installed()), `${what} again: still as asked`);
  }
  const bad = run({ du_state: 'present', du_package: '' });
  t.not(bad.status, 0, 'present without a package is refused');
});
