// The reaper as pid 1 of a real subhost: orphans, stop signals, grace period; ovb-launch teardown mode.
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import {
  BUSYBOX, LAUNCH, Launch, REAPER, alive, bootOps, build, encode, isRoot, logLines, makeEnv, sh, sleep, teardownOps, until,
} from './fixtures/helpers.js'

if (!isRoot || !BUSYBOX) {
  t.plan(0, 'needs root and busybox-static')
} else {
  const err = build()
  if (err) throw new Error(err)

  t.test('binaries are static and small', async t => {
    for (const b of [LAUNCH, REAPER]) {
      t.match(sh(`file ${b}`).out, /statically linked|static-pie/, `${path.basename(b)} is static`)
    }
    const size = fs.statSync(REAPER).size
    t.ok(size < 64 * 1024, `reaper is ${size} bytes`)
  })

  t.test('the reaper reaps orphans: a double-forking loop leaves no zombies', async t => {
    const e = makeEnv(t, false)
    const init = [
      'i=0; while [ $i -lt 1000 ]; do ( sleep 0.01 & ); i=$((i+1)); done',
      'sleep 1',
      "grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l > /shared/zombies",
      'ls -d /proc/[0-9]* | wc -l > /shared/procs',
    ].join('\n')
    const l = new Launch(encode([...bootOps(e, init), ...teardownOps(e)]), e.log)
    t.teardown(() => l.kill())
    t.equal(await l.waitLine('ready ', 60000), 'ready 0')
    t.equal(fs.readFileSync(path.join(e.shared, 'zombies'), 'utf8').trim(), '0', 'no zombie')
    // pid 1, the init shell, its grep/wc or ls/wc: nothing else left
    t.ok(Number(fs.readFileSync(path.join(e.shared, 'procs'), 'utf8').trim()) <= 4, 'no orphan left running')
    t.equal(await l.waitLine('exit '), 'exit 0')
    t.equal(await l.waitExit(), 0)
  })

  t.test('SIGTERM to pid 1: TERM to all, KILL at the grace limit for one that ignores TERM', async t => {
    const e = makeEnv(t, false)
    const init = [
      "sh -c 'trap \"\" TERM; echo $$ > /shared/stubborn; while :; do sleep 1; done' &",
      "sleep 1000 &",
      'while [ ! -s /shared/stubborn ]; do sleep 0.05; done',
    ].join('\n')
    const l = new Launch(encode([...bootOps(e, init, { env: { OVB_STOP_TIMEOUT: '1' } }), ...teardownOps(e)]), e.log)
    t.teardown(() => l.kill())
    t.equal(await l.waitLine('ready '), 'ready 0')
    const start = Date.now()
    process.kill(l.pid1, 'SIGTERM')
    t.equal(await l.waitLine('exit ', 10000), 'exit 0', 'reaper exits 0')
    const took = Date.now() - start
    t.ok(took >= 900 && took < 5000, `ended after the 1 s grace period (${took} ms)`)
    t.equal(await l.waitLine('torn '), 'torn ok')
    t.ok(logLines(e.log).some(x => x.msg === `reaper ${e.host}: stopped by SIGTERM, KILL after the grace period (init script status 0)`))
  })

  t.test('a second stop signal goes straight to KILL', async t => {
    const e = makeEnv(t, false)
    const init = "sh -c 'trap \"\" TERM INT; touch /shared/up; while :; do sleep 1; done' &\nwhile [ ! -e /shared/up ]; do sleep 0.05; done"
    const l = new Launch(encode([...bootOps(e, init, { env: { OVB_STOP_TIMEOUT: '60' } }), ...teardownOps(e)]), e.log)
    t.teardown(() => l.kill())
    t.equal(await l.waitLine('ready '), 'ready 0')
    const start = Date.now()
    process.kill(l.pid1, 'SIGINT')
    await sleep(200)
    t.ok(alive(l.pid1), 'still stopping')
    process.kill(l.pid1, 'SIGPWR')
    t.equal(await l.waitLine('exit ', 5000), 'exit 0')
    t.ok(Date.now() - start < 5000, 'well before the 60 s grace')
    t.ok(logLines(e.log).some(x => /stopped by SIGINT, KILL at a second signal/.test(x.msg)))
  })

  t.test('status fd is not inherited by services; init status is reported', async t => {
    const e = makeEnv(t, false)
    const init = 'ls -l /proc/self/fd/ > /shared/fds; env > /shared/env; exit 5'
    const l = new Launch(encode([...bootOps(e, init), ...teardownOps(e)]), e.log)
    t.teardown(() => l.kill())
    t.equal(await l.waitLine('ready '), 'ready 5', 'ready carries the init status')
    t.equal(await l.waitExit(), 0, 'the reaper itself ended normally')
    const fds = fs.readFileSync(path.join(e.shared, 'fds'), 'utf8')
    t.notMatch(fds, / 3 -> /, 'fd 3 not inherited by the init script')
    t.notMatch(fs.readFileSync(path.join(e.shared, 'env'), 'utf8'), /OVB_/, 'OVB_* removed from the environment')
  })

  t.test('reaper without OVB_INIT and no child exits at once', async t => {
    const r = spawnSync(REAPER, ['x'], { encoding: 'utf8', timeout: 5000, env: {} })
    t.equal(r.status, 0)
    t.equal(r.stderr, 'reaper x: ended: no process left\n')
  })

  t.test('ovb-launch teardown: run with stdin, unlink, rmdir, del-netns; errors logged, the rest runs', async t => {
    const dir = fs.mkdtempSync('/tmp/ovbt-')
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
    fs.writeFileSync(`${dir}/m1`, '')
    fs.mkdirSync(`${dir}/d1`)
    const ns = `tn${process.pid % 100000}td`
    sh(`ip netns add ${ns}`)
    t.teardown(() => sh(`[ -e /run/netns/${ns} ] && ip netns del ${ns}`))
    const prog = encode([
      ['name', 'tdx'],
      ['setenv', 'FOO', 'bar'],
      ['run', '5000', 'line one\nline two\n', 'sh', '-c', 'cat; echo foo=$FOO; echo to stderr >&2'],
      ['run', '5000', '', 'sh', '-c', 'exit 3'],
      ['run', '300', '', 'sh', '-c', 'sleep 30'],
      ['run', '5000', '', '/nonexistent/prog'],
      ['unlink', `${dir}/m1`],
      ['unlink', `${dir}/absent`],
      ['rmdir', `${dir}/d1`, '1000'],
      ['rmdir', `${dir}/absent`, '1000'],
      ['del-netns', ns],
      ['del-netns', `${ns}absent`],
      ['log', 'Exited tdx'],
    ])
    const start = Date.now()
    const r = spawnSync(LAUNCH, ['teardown'], { input: prog, encoding: 'utf8', timeout: 20000 })
    t.ok(Date.now() - start < 5000, 'the timed-out run was killed')
    t.equal(r.status, 1, 'exit 1: some ops failed')
    const log = r.stdout.split('\n').filter(Boolean).map(l => JSON.parse(l))
    const msgs = log.map((x: any) => x.msg)
    t.same(msgs.slice(0, 4), ['line one', 'line two', 'foo=bar', 'to stderr'], 'stdin text and output relayed')
    t.ok(msgs.includes('teardown: run sh exited with status 3'))
    t.ok(msgs.includes('teardown: run sh timed out after 300 ms'))
    t.ok(msgs.includes('run /nonexistent/prog: No such file or directory'))
    t.ok(msgs.includes('teardown: run /nonexistent/prog exited with status 127'))
    t.equal(msgs[msgs.length - 1], 'Exited tdx')
    t.ok(log.every((x: any) => x.subhost === 'tdx'))
    t.notOk(fs.existsSync(`${dir}/m1`))
    t.notOk(fs.existsSync(`${dir}/d1`))
    t.notOk(fs.existsSync(`/run/netns/${ns}`))
    t.notMatch(sh('ip netns list').out, new RegExp(`^${ns}\\b`, 'm'))
    // all fine -> 0
    const ok = spawnSync(LAUNCH, ['teardown'], { input: encode([['unlink', `${dir}/absent`], ['log', 'x']]), encoding: 'utf8' })
    t.equal(ok.status, 0)
  })
}
