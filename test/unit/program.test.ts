// The op encoding round trip: every boot and teardown program of the conf.d examples,
// encoded by src/plan/program.ts, decodes back to the same ops with a decoder that
// follows PROTOCOL.md and takes each op's arity from ovb-launch's own table. Pure.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readConfig } from '../../src/config/read.js';
import { buildBootPlan } from '../../src/plan/build.js';
import { teardownProgram } from '../../src/plan/execute.js';
import { encodeBootProgram, encodeOps, toNativeOp } from '../../src/plan/program.js';
import type { NativeOp } from '../../src/plan/types.js';
import { EXAMPLE_LAYOUT, prepareExample } from '../fixtures/examples.js';

const NATIVE = fileURLToPath(new URL('../../src/native/', import.meta.url));

/** `{ "name", fixed, variadic, where }` rows of the C op table, from every C source. */
function arities(): Map<string, { fixed: number; variadic: boolean }> {
  const table = new Map<string, { fixed: number; variadic: boolean }>();
  for (const f of readdirSync(NATIVE).filter((n) => n.endsWith('.c') || n.endsWith('.h'))) {
    for (const m of readFileSync(path.join(NATIVE, f), 'utf8').matchAll(/\{\s*"([a-z0-9-]+)",\s*(\d+),\s*(\d+),\s*IN_[A-Z_ |]+(?:,[^}]*)?\}/g)) {
      table.set(m[1]!, { fixed: Number(m[2]), variadic: m[3] !== '0' });
    }
  }
  return table;
}

/** PROTOCOL.md "Program encoding": NUL-terminated strings, an empty one ends each op. */
function decode(buf: Buffer, table: ReturnType<typeof arities>): NativeOp[] {
  const strings = buf.toString('utf8').split('\0');
  if (strings.pop() !== '') throw new Error('truncated: no final NUL');
  const ops: NativeOp[] = [];
  let i = 0;
  const next = () => {
    if (i >= strings.length) throw new Error('truncated op');
    return strings[i++]!;
  };
  while (i < strings.length) {
    const op = next();
    const def = table.get(op);
    if (!def) throw new Error(`unknown op ${op}`);
    const args: string[] = [];
    for (let k = 0; k < def.fixed; k++) args.push(next());
    if (def.variadic) {
      for (let s = next(); s !== ''; s = next()) args.push(s);
      if (args.length === def.fixed) throw new Error(`${op}: variadic tail empty`);
    } else if (next() !== '') {
      throw new Error(`${op}: too many arguments`);
    }
    ops.push(toNativeOp(op, args));
  }
  return ops;
}

const table = arities();

t.test('the C table was found', async (t) => {
  for (const op of ['name', 'setenv', 'step', 'mount', 'exec', 'teardown', 'unlink', 'del-netns']) t.ok(table.has(op), op);
});

for (const example of Object.keys(EXAMPLE_LAYOUT)) {
  t.test(`${example}: boot and teardown programs round-trip`, async (t) => {
    const dir = prepareExample(t, example);
    const config = await readConfig(path.join(dir, `${example}.conf`), { cwd: dir });
    const plan = buildBootPlan(config, { reaperPath: '/reaper', cgroupRoot: '/sys/fs/cgroup', pidFile: '/run/x.pid', bangMounts: [`${dir}/mnt`] });
    const boot = plan.steps.filter((s) => s.place !== 'host' || s.native.length)
      .flatMap((s): NativeOp[] => [{ op: 'step', args: [s.id] }, ...s.native]);
    const teardown = teardownProgram(plan.steps, plan.name);
    t.same(decode(encodeBootProgram(boot, teardown), table), [...boot, { op: 'teardown', args: [] }, ...teardown]);
    t.same(decode(encodeOps(teardown), table), teardown);
    t.ok(boot.some((o) => (o.args as string[]).includes('')), 'empty arguments are among them (mount\'s empty fstype or options)');
  });
}

t.test('arguments with every byte but NUL survive; NUL is refused', async (t) => {
  const odd = ['', ' ', '\n', '\t', 'ü', '\\0', "'\"$`", '\x01\x7f', 'a'.repeat(70000)];
  const ops: NativeOp[] = odd.map((v) => ({ op: 'setenv', args: ['X', v] }));
  t.same(decode(encodeOps(ops), table), ops);
  t.throws(() => encodeOps([{ op: 'log', args: ['a\0b'] }]), /NUL/);
});
