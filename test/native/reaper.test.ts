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
    l.commit() // as the library does once it read ready
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
    l.commit() // as the library does once it read ready
    const start = Date.now()
    process.kill(l.pid1, 'SIGTERM')
    t.equal(await l.waitLine('exit ', 10000), 'exit 0', 'reaper exits 0')
    const took = Date.now() - start
    // Not before the grace period; the upper bound is waitLine's (the machine's load decides how soon after).
    t.ok(took >= 900, `ended after the 1 s grace period (${took} ms)`)
    t.equal(await l.waitLine('torn '), 'torn ok')
    t.ok(logLines(e.log).some(x => x.msg === `reaper ${e.host}: stopped by SIGTERM, KILL after the grace period (init script status 0)`))
  })

  t.test('a second stop signal goes straight to KILL', async t => {
    const e = makeEnv(t, false)
    const init = "sh -c 'trap \"\" TERM INT; touch /shared/up; while :; do sleep 1; done' &\nwhile [ ! -e /shared/up ]; do sleep 0.05; done"
    const l = new Launch(encode([...bootOps(e, init, { env: { OVB_STOP_TIMEOUT: '60' } }), ...teardownOps(e)]), e.log)
    t.teardown(() => l.kill())
    t.equal(await l.waitLine('ready '), 'ready 0')
    l.commit() // as the library does once it read ready
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
    l.commit() // as the library does once it read ready
    t.equal(await l.waitExit(), 0, 'the reaper itself ended normally')
    const fds = fs.readFileSync(path.join(e.shared, 'fds'), 'utf8')
    t.notMatch(fds, / 3 -> /, 'fd 3 not inherited by the init script')
    t.notMatch(fs.readFileSync(path.join(e.shared, 'env'), 'utf8'), /OVB_/, 'OVB_* removed from the environment')
  })

  t.test('RUN services: restarted with back-off, reported, USR1 forwarded; OVB_STOP runs first at TERM', async t => {
    const e = makeEnv(t, false)
    const run = [
      // crashes at once, every time: restarts 1 s, 2 s later, ... (given up later than this test looks)
      "echo \"$(cut -d' ' -f1 /proc/uptime)\" >> /shared/crash; exit 3",
      // stays up; says when it gets USR1 and TERM
      "trap 'echo usr1 >> /shared/sig' USR1; trap 'echo term >> /shared/sig; exit 0' TERM; env > /shared/runenv; while :; do sleep 0.05; done",
    ].join('\n')
    const stop = 'echo second-started >> /shared/order\necho first-started >> /shared/order'
    const l = new Launch(encode([...bootOps(e, 'echo init > /shared/order', { env: { OVB_RUN: run, OVB_STOP: stop, OVB_STOP_TIMEOUT: '5' } }), ...teardownOps(e)]), e.log)
    t.teardown(() => l.kill())
    t.equal(await l.waitLine('ready '), 'ready 0')
    l.commit()
    const report = () => {
      try { return JSON.parse(fs.readFileSync(`/proc/${l.pid1}/root/run/overlay-boot-reaper.json`, 'utf8')) } catch { return undefined }
    }
    t.ok(await until(() => (report()?.services?.[0]?.restarts ?? 0) >= 2, 8000), 'the crashing service was restarted twice')
    const r = report()
    t.match(r, { name: e.host, phase: 'running', initStatus: 0, stopSignal: null })
    t.match(r.services[0], { command: run.split('\n')[0], lastExit: 3 })
    t.match(r.services[1], { state: 'running', restarts: 0, lastExit: null })
    t.ok(r.services[1].pid > 1, 'pid (inside the subhost) of the running service')
    const crashes = () => fs.readFileSync(path.join(e.shared, 'crash'), 'utf8').trim().split('\n')
    await until(() => crashes().length >= 3, 2000)
    const starts = crashes().map(Number)
    t.ok(starts.length >= 3 && starts[2]! - starts[1]! > starts[1]! - starts[0]!, `growing delays: ${starts.join(' ')}`)
    t.notMatch(fs.readFileSync(path.join(e.shared, 'runenv'), 'utf8'), /OVB_/, 'no OVB_* in a service\'s environment')
    process.kill(l.pid1, 'SIGUSR1')
    t.ok(await until(() => fs.existsSync(path.join(e.shared, 'sig')), 3000), 'USR1 forwarded to the RUN service')
    t.ok(alive(l.pid1), 'USR1 does not stop the subhost')
    process.kill(l.pid1, 'SIGTERM')
    t.equal(await l.waitLine('exit ', 8000), 'exit 0')
    t.equal(fs.readFileSync(path.join(e.shared, 'order'), 'utf8'), 'init\nsecond-started\nfirst-started\n', 'the stop script ran')
    t.equal(fs.readFileSync(path.join(e.shared, 'sig'), 'utf8'), 'usr1\nterm\n', 'then TERM to the RUN service')
    const msgs = logLines(e.log).map(x => x.msg)
    t.ok(msgs.some(m => /^reaper .*: RUN service \(echo .*\) exited with status 3 after 0\.\d s; restart 1 in 1 s$/.test(m)), 'restart logged')
    t.ok(msgs.some(m => /restart 2 in 2 s$/.test(m)), 'the delay doubles')
    t.ok(msgs.includes(`reaper ${e.host}: stopped by SIGTERM, all processes ended (init script status 0)`))
  })

  t.test('not pid 1: a RUN service that always fails is given up after 5 rapid failures; the reaper then exits', async t => {
    const start = Date.now()
    const r = spawnSync(REAPER, ['x'], { encoding: 'utf8', timeout: 30000, env: { PATH: '/bin:/usr/bin', OVB_RUN: 'exit 7' } })
    const took = Date.now() - start
    t.equal(r.status, 0)
    const lines = r.stderr.trim().split('\n')
    t.same(lines, [
      'reaper x: RUN service (exit 7) exited with status 7 after 0.0 s; restart 1 in 1 s',
      'reaper x: RUN service (exit 7) exited with status 7 after 0.0 s; restart 2 in 2 s',
      'reaper x: RUN service (exit 7) exited with status 7 after 0.0 s; restart 3 in 4 s',
      'reaper x: RUN service (exit 7) exited with status 7 after 0.0 s; restart 4 in 8 s',
      'reaper x: RUN service (exit 7) exited with status 7 after 0.0 s; given up after 5 rapid failures',
      'reaper x: ended: no process left',
    ])
    t.ok(took >= 15000 && took < 20000, `1+2+4+8 s of back-off (${took} ms)`)
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
    const msgs = log.map((x: { msg: string }) => x.msg)
    t.same(msgs.slice(0, 4), ['line one', 'line two', 'foo=bar', 'to stderr'], 'stdin text and output relayed')
    t.ok(msgs.includes('teardown: run sh exited with status 3'))
    t.ok(msgs.includes('teardown: run sh timed out after 300 ms'))
    t.ok(msgs.includes('run /nonexistent/prog: No such file or directory'))
    t.ok(msgs.includes('teardown: run /nonexistent/prog exited with status 127'))
    t.equal(msgs[msgs.length - 1], 'Exited tdx')
    t.ok(log.every((x: { subhost?: string }) => x.subhost === 'tdx'))
    t.notOk(fs.existsSync(`${dir}/m1`))
    t.notOk(fs.existsSync(`${dir}/d1`))
    t.notOk(fs.existsSync(`/run/netns/${ns}`))
    t.notMatch(sh('ip netns list').out, new RegExp(`^${ns}\\b`, 'm'))
    // all fine -> 0
    const ok = spawnSync(LAUNCH, ['teardown'], { input: encode([['unlink', `${dir}/absent`], ['log', 'x']]), encoding: 'utf8' })
    t.equal(ok.status, 0)
  })
}
