// Teardown programs, from the plans of the conf.d examples: every host change has its
// undo beside it, the teardown runs those undos last step first, and overlay-stop's
// left-over cleanup is the undo of the host steps. Pure, no root.
import t, { type Test } from 'tap';
import path from 'node:path';
import { readConfig } from '../../src/config/read.js';
import { buildBootPlan } from '../../src/plan/build.js';
import { hostUndo, teardownProgram } from '../../src/plan/execute.js';
import type { BootPlan } from '../../src/plan/types.js';
import { EXAMPLE_LAYOUT, prepareExample } from '../fixtures/examples.js';

async function examplePlan(t: Test, example: string, pidFile?: string): Promise<BootPlan> {
  const dir = prepareExample(t, example);
  const config = await readConfig(path.join(dir, `${example}.conf`), { cwd: dir });
  return buildBootPlan(config, { reaperPath: '/reaper', cgroupRoot: '/sys/fs/cgroup', pidFile });
}

for (const example of Object.keys(EXAMPLE_LAYOUT)) {
  t.test(`${example}: every host change is undone by its own step`, async (t) => {
    const plan = await examplePlan(t, example, '/run/x.pid');
    for (const s of plan.steps.filter((x) => x.place === 'host')) {
      t.ok(s.undo.length > 0, `${s.id}: has an undo`);
      t.ok(s.undoTitle, `${s.id}: says what undoes it`);
    }
    const ids = plan.steps.map((s) => s.id);
    t.ok(ids.includes('fast-stop') && ids.includes('pidfile'), 'the fast-stop line and the pidfile are plan steps');
    t.same(plan.steps.filter((s) => s.when === 'running').map((s) => s.id), ['fast-stop', 'pidfile'], 'written only once the subhost is up');
  });

  t.test(`${example}: the teardown program undoes the steps last first`, async (t) => {
    const plan = await examplePlan(t, example);
    const program = teardownProgram(plan.steps, plan.name);
    t.same(program[0], { op: 'name', args: [plan.name] });
    t.same(program.at(-1), { op: 'log', args: [`Exited ${plan.name}`] });
    t.same(program.slice(1, -1), [...plan.steps].reverse().flatMap((s) => s.undo));
    const unlinks = program.filter((o) => o.op === 'unlink').map((o) => o.args[0]);
    t.same(unlinks, [`/run/overlay-boot/${plan.name}.stop`, `/run/overlay-boot/${plan.name}.json`],
      'the fast-stop line goes before the record that is the lock');
    const at = (op: string) => program.map((o, i) => (o.op === op ? i : -1)).filter((i) => i >= 0);
    const netns = at('del-netns')[0] ?? -1;
    t.ok(netns > Math.max(-1, ...at('del-link'), ...at('rmdir')), 'the namespace goes after the cables and the cgroup');
    t.ok(netns < program.findIndex((o) => o.op === 'unlink' && o.args[0]!.endsWith('.json')), 'and before the record that is the lock');
  });

  t.test(`${example}: left-over cleanup is the undo of the host steps`, async (t) => {
    const plan = await examplePlan(t, example);
    const ops = hostUndo(plan);
    t.ok(ops.some((o) => o.op === 'del-netns' && o.args[0] === plan.name), 'deletes the network namespace');
    for (const s of plan.steps.filter((x) => x.id.startsWith('cable-'))) t.ok(ops.some((o) => o.op === 'del-link' && o.args[0] === s.undo[0]?.args[0]), `${s.id}: its host end`);
    t.ok(ops.some((o) => o.op === 'rmdir' && o.args[0] === `/sys/fs/cgroup/${plan.name}`), 'removes the cgroup');
    t.notOk(ops.some((o) => o.op === 'run'), 'never runs the UPPER program: only a boot that set it up tears it down');
  });
}
