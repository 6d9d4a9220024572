// Runs last (tap runs files in order): nothing of any test may be left on the host.
// What is found is reported as a failure and then removed, so a leak is seen once
// and does not spill into the next run.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { stopByName } from '../src/commands/stop.js';
import { listStateRecords } from '../src/subhost/state.js';
import { snapshotHost } from './helpers/host.js';

t.test('no subhost, namespace, veth, overlay mount or reaper is left', async (t) => {
  const records = listStateRecords().map((r) => r.record.name);
  t.same(records, [], 'no state record left');
  for (const name of records) {
    try { await stopByName(name, { timeoutSeconds: 2 }); } catch { /* cleaned */ }
  }
  const snap = snapshotHost();
  t.same(snap.netns, [], 'no network namespace left');
  for (const ns of snap.netns) spawnSync('ip', ['netns', 'del', ns]);
  const veths = spawnSync('ip', ['-o', 'link', 'show', 'type', 'veth'], { encoding: 'utf8' }).stdout
    .split('\n').filter(Boolean).map((l) => l.split(': ')[1]!.split('@')[0]!);
  t.same(veths, [], 'no veth left');
  for (const v of veths) spawnSync('ip', ['link', 'del', v]);
  const overlays = readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((l) => l.split(' ')[2] === 'overlay');
  t.same(overlays, [], 'no overlay mount left in the host mount namespace');
  const reapers = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return ['reaper', 'ovb-launch', 'dummy_service'].includes(readFileSync(`/proc/${p}/comm`, 'utf8').trim()); } catch { return false; }
  });
  t.same(reapers, [], 'no reaper, monitor or dummy_service process left');
  const loops = spawnSync('losetup', ['-a'], { encoding: 'utf8' }).stdout.trim();
  t.equal(loops, '', 'no loop device left');
});
