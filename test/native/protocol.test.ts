// One op protocol in three places: NATIVE_OPS (and the NativeOp union) in
// src/plan/types.ts, the handler table of ovb-launch.c (its source, and
// `ovb-launch --list-ops` when built) and the tables of PROTOCOL.md. Pure: no root.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nativeOp, toNativeOp } from '../../src/plan/program.js';
import { NATIVE_OPS } from '../../src/plan/types.js';

const NATIVE = fileURLToPath(new URL('../../src/native/', import.meta.url));

/** One row a op: `name fixed fixed|variadic boot|teardown|boot,teardown`, sorted. */
type Row = string;

const fromTs: Row[] = Object.entries(NATIVE_OPS)
  .map(([name, d]) => `${name} ${d.fixed} ${d.variadic ? 'variadic' : 'fixed'} ${d.in}`).sort();

function fromCSource(): Row[] {
  const src = readFileSync(`${NATIVE}decode.c`, 'utf8');
  const table = src.slice(src.indexOf('opdefs[] = {'), src.indexOf('};', src.indexOf('opdefs[] = {')));
  const where = (w: string) => w.replace(/\s/g, '').split('|').map((x) => ({ IN_BOOT: 'boot', IN_TEARDOWN: 'teardown' })[x]).join(',');
  return [...table.matchAll(/\{\s*"([a-z0-9-]+)",\s*(\d+),\s*(\d+),\s*(IN_[A-Z_ |]+),\s*(\w+),\s*(\w+)\s*\}/g)]
    .map((m) => `${m[1]} ${m[2]} ${m[3] === '0' ? 'fixed' : 'variadic'} ${where(m[4]!)}`).sort();
}

/** PROTOCOL.md's boot and teardown tables: `| \`op\` | args | effect |`; `x...` is a variadic tail. */
function fromProtocol(): Row[] {
  const md = readFileSync(`${NATIVE}PROTOCOL.md`, 'utf8');
  const section = (title: string) => {
    const start = md.indexOf(`\n## ${title}`);
    return md.slice(start, md.indexOf('\n## ', start + 1));
  };
  const ops = new Map<string, { fixed: number; variadic: boolean; in: string[] }>();
  for (const [title, program] of [['Boot ops', 'boot'], ['Teardown ops', 'teardown']] as const) {
    for (const m of section(title).matchAll(/^\| `([a-z0-9-]+)` \|(.*)$/gm)) {
      // the args cell ends at the first ' | ' (a `c|b` inside it has no spaces); empty: ' | '
      const rest = m[2]!;
      const args = rest.startsWith(' | ') || rest.startsWith(' |') && rest[2] === ' ' ? '' : rest.slice(0, rest.indexOf(' | '));
      const words = args.trim().split(/\s+/).filter(Boolean);
      const variadic = words.at(-1)?.endsWith('...') ?? false;
      const prev = ops.get(m[1]!);
      ops.set(m[1]!, { fixed: variadic ? words.length - 1 : words.length, variadic, in: [...(prev?.in ?? []), program] });
    }
  }
  // the separator op is described under "Program encoding", not in the tables
  ops.set('teardown', { fixed: 0, variadic: false, in: ['boot'] });
  return [...ops].map(([name, d]) => `${name} ${d.fixed} ${d.variadic ? 'variadic' : 'fixed'} ${d.in.join(',')}`).sort();
}

t.test('the C handler table is NATIVE_OPS', async (t) => {
  const c = fromCSource();
  t.ok(c.length >= 25, `the table was found (${c.length} ops)`);
  t.same(c, fromTs);
});

t.test('PROTOCOL.md documents exactly NATIVE_OPS', async (t) => {
  t.same(fromProtocol(), fromTs);
});

t.test('ovb-launch --list-ops prints the same table', { skip: !existsSync(`${NATIVE}build/ovb-launch`) && 'not built' }, async (t) => {
  const r = spawnSync(`${NATIVE}build/ovb-launch`, ['--list-ops'], { encoding: 'utf8' });
  t.equal(r.status, 0);
  t.same(r.stdout.trim().split('\n').sort(), fromTs);
});

t.test('ops are built and checked against their arity', async (t) => {
  t.same(nativeOp('mknod', '/dev/null', 'c', 1, 3, '0666', 0, 0), { op: 'mknod', args: ['/dev/null', 'c', '1', '3', '0666', '0', '0'] });
  t.same(nativeOp('exec', 'reaper', 'web'), { op: 'exec', args: ['reaper', 'web'] });
  t.throws(() => toNativeOp('frob', []), { code: 'INTERNAL' }, 'an unknown op');
  t.throws(() => toNativeOp('mkdir', ['/x']), { code: 'INTERNAL' }, 'too few arguments');
  t.throws(() => toNativeOp('exec', []), { code: 'INTERNAL' }, 'an empty variadic tail');
  t.throws(() => toNativeOp('run', ['1', '', '']), { code: 'INTERNAL' }, 'an empty string in a variadic tail');
});
