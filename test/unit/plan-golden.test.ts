// The boot plan of every conf.d example, as `--check` prints it and as JSON, against
// golden files in test/fixtures/golden/. Pure: reads configs, changes nothing, needs no
// root. Regenerate after an intended change with UPDATE_GOLDEN=1 and review the diff.
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readConfig } from '../../src/config/read.js';
import type { SubhostConfig } from '../../src/config/types.js';
import { buildBootPlan, type BuildPlanOptions } from '../../src/plan/build.js';
import { formatPlan } from '../../src/plan/format.js';
import { CONF_D, EXAMPLE_LAYOUT, prepareExample } from '../fixtures/examples.js';

const GOLDEN = fileURLToPath(new URL('../fixtures/golden/', import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';
/** Stands for the temporary copy of conf.d, so the output is the same on every run. */
const DIR = '<CONF.D>';

/** Fixed host facts: the plan must not depend on the machine that builds it. */
const HOST: BuildPlanOptions = { stateDir: '/run/overlay-boot', reaperPath: '/usr/lib/overlay-boot/reaper', cgroupRoot: '/sys/fs/cgroup' };

/** Variants beyond the plain examples: the steps only some boots have. */
const VARIANTS: Record<string, { example: string; options: (dir: string) => Partial<BuildPlanOptions> }> = {
  'minimal+pidfile+bang-mount': {
    example: 'minimal',
    options: (dir) => ({ pidFile: '/run/minimal.pid', bangMounts: [path.join(dir, 'minimal/mnt')] }),
  },
  'minimal+no-cgroup': { example: 'minimal', options: () => ({ cgroupRoot: undefined }) },
};

function compare(t: Test, file: string, actual: string) {
  const golden = path.join(GOLDEN, file);
  if (UPDATE || !existsSync(golden)) {
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(golden, actual);
    if (!UPDATE) t.fail(`${file} was missing: written; review and commit it`);
    else t.pass(`${file} written`);
    return;
  }
  t.equal(actual, readFileSync(golden, 'utf8'), `${file} as golden (UPDATE_GOLDEN=1 regenerates)`);
}

async function render(t: Test, example: string, extra: (dir: string) => Partial<BuildPlanOptions> = () => ({})) {
  const dir = prepareExample(t, example);
  const config: SubhostConfig = await readConfig(path.join(dir, `${example}.conf`), { cwd: dir });
  const plan = buildBootPlan(config, { ...HOST, ...extra(dir) });
  const fix = (s: string) => s.split(dir).join(DIR);
  return { text: fix(formatPlan(config, plan)), json: fix(JSON.stringify(plan, null, 1)) + '\n' };
}

t.test('every example has its golden plan', async (t) => {
  const examples = readdirSync(CONF_D).filter((f) => f.endsWith('.conf')).map((f) => f.slice(0, -5)).sort();
  t.same(examples, Object.keys(EXAMPLE_LAYOUT).sort(), 'every conf.d example is laid out by the fixture');
  for (const example of examples) {
    await t.test(example, async (t) => {
      const { text, json } = await render(t, example);
      compare(t, `${example}.txt`, text);
      compare(t, `${example}.json`, json);
      t.notOk(/ob-config-/.test(text + json), 'no temporary path left in the output');
    });
  }
});

for (const [name, v] of Object.entries(VARIANTS)) {
  t.test(name, async (t) => {
    const { text, json } = await render(t, v.example, v.options);
    compare(t, `${name}.txt`, text);
    compare(t, `${name}.json`, json);
  });
}
