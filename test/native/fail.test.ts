// ovb-launch: failing ops, aborted boots, bad programs; teardown always runs, nothing stays mounted.
import t, { type Test } from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { BUSYBOX, Launch, alive, killPid, bootOps, build, encode, hostMountsUnder, isRoot, logLines, makeEnv, teardownOps, until } from './fixtures/helpers.js'

if (!isRoot || !BUSYBOX) {
  t.plan(0, 'needs root and busybox-static')
} else {
  const err = build()
  if (err) throw new Error(err)

  async function failing(t: Test, premount: string[][], extra: string[][] = []) {
    const e = makeEnv(t)
    const marker = path.join(e.dir, 'marker')
    fs.writeFileSync(marker, 'x')
    const ops = [...bootOps(e, 'true', { premount, extra }), ...teardownOps(e, [['unlink', marker]])]
    const l = new Launch(encode(ops), e.log)
    t.teardown(() => l.kill())
    const fail = await l.waitLine('fail ')
    t.equal(await l.waitLine('torn '), 'torn ok', 'teardown ran')
    t.equal(await l.waitExit(), 1, 'M exits 1')
    t.notOk(l.lines.some(x => x.startsWith('ready ') || x.startsWith('exit ')), 'no ready/exit line')
    t.notOk(fs.existsSync(marker), 'teardown program ran')
    t.notOk(fs.existsSync(`/run/netns/${e.netns}`), 'netns deleted')
    t.same(hostMountsUnder(e.dir), [], 'nothing mounted in the host')
    t.equal(logLines(e.log).pop()?.msg, `Exited ${e.host}`)
    return { fail, e, l }
  }

  t.test('a hook that exits 1 fails its step', async t => {
    const { fail, e } = await failing(t, [['hook', '5000', 'echo premount says hi; exit 1']])
    t.equal(fail, 'fail premount 0 hook exited with status 1')
    const msgs = logLines(e.log).map(x => x.msg)
    t.ok(msgs.includes('premount says hi'), 'hook output in the log')
    t.ok(logLines(e.log).some(x => x.level === 50 && x.msg === fail), 'the failure is logged')
  })

  t.test('a hook past its timeout is killed with its process group', async t => {
    const start = Date.now()
    const { fail } = await failing(t, [['hook', '300', 'sleep 30 & sleep 30']])
    t.equal(fail, 'fail premount 0 hook timed out after 300 ms')
    t.ok(Date.now() - start < 5000, 'bounded')
  })

  t.test('mount of a missing directory names the op, the path and the error', async t => {
    const { fail, e } = await failing(t, [], [['mount', '/nonexistent/dir', '/tmp/x-missing', '', 'bind', '']])
    t.equal(fail, 'fail postmount 2 mount /nonexistent/dir on /tmp/x-missing: No such file or directory')
    t.ok(e)
  })

  t.test('an overlay with a missing lower dir fails in rootfs', async t => {
    const e = makeEnv(t)
    const ops = bootOps(e, 'true').map(op =>
      op[0] === 'mount' && op[3] === 'overlay' ? ['mount', 'overlay', e.live, 'overlay', '', `lowerdir=${e.dir}/nope,upperdir=${e.upper},workdir=${e.work}`] : op)
    const l = new Launch(encode([...ops, ...teardownOps(e)]), e.log)
    t.teardown(() => l.kill())
    t.equal(await l.waitLine('fail '), `fail rootfs 2 mount overlay on ${e.live}: No such file or directory`)
    t.equal(await l.waitExit(), 1)
    t.same(hostMountsUnder(e.dir), [])
  })

  t.test('a failure in pid 1 (before exec) ends with exit and teardown', async t => {
    const e = makeEnv(t)
    const ops = bootOps(e, 'true').map(op => (op[0] === 'pivot' ? ['pivot', '/nonexistent-root'] : op))
    const l = new Launch(encode([...ops, ...teardownOps(e)]), e.log)
    t.teardown(() => l.kill())
    t.equal(await l.waitLine('fail '), 'fail namespaces 2 pivot /nonexistent-root: No such file or directory')
    t.equal(await l.waitLine('exit '), 'exit 1')
    t.equal(await l.waitLine('torn '), 'torn ok')
    t.equal(await l.waitExit(), 1)
    t.notOk(fs.existsSync(`/run/netns/${e.netns}`))
  })

  t.test('control pipe closed without detach before ready: the subhost is killed and torn down', async t => {
    const e = makeEnv(t)
    // the init script never ends, so ready never comes
    const l = new Launch(encode([...bootOps(e, 'mkfifo /shared/f; read x < /shared/f'), ...teardownOps(e)]), e.log)
    t.teardown(() => l.kill())
    await l.waitLine('pid1 ')
    t.ok(await until(() => fs.existsSync(path.join(e.shared, 'f'))), 'init is running')
    const pid1 = l.pid1
    l.closeControl()
    t.equal(await l.waitLine('fail '), 'fail init 125 boot aborted: the control pipe was closed before ready')
    t.equal(await l.waitLine('exit '), 'exit 137', 'pid 1 SIGKILLed')
    t.equal(await l.waitLine('torn '), 'torn ok')
    t.equal(await l.waitExit(), 1)
    t.notOk(alive(pid1), 'pid 1 gone')
    t.notOk(fs.existsSync(`/run/netns/${e.netns}`), 'netns deleted')
  })

  t.test('control pipe closed while the mount child runs a hook', async t => {
    const e = makeEnv(t)
    const hook = `sleep 60 & echo $! > ${e.dir}/sleep.pid; touch ${e.dir}/hook-started; wait`
    const l = new Launch(encode([...bootOps(e, 'true', { premount: [['hook', '60000', hook]] }), ...teardownOps(e)]), e.log)
    t.teardown(() => l.kill())
    t.ok(await until(() => fs.existsSync(`${e.dir}/hook-started`)))
    const sleepPid = Number(fs.readFileSync(`${e.dir}/sleep.pid`, 'utf8'))
    t.teardown(() => killPid(sleepPid))
    l.closeControl()
    t.equal(await l.waitLine('fail '), 'fail premount 125 boot aborted: the control pipe was closed before ready')
    t.equal(await l.waitLine('torn '), 'torn ok')
    t.equal(await l.waitExit(), 1)
    t.notOk(l.lines.some(x => x.startsWith('pid1 ')))
    t.ok(await until(() => !alive(sleepPid), 3000), "the hook's process group was killed")
    t.notOk(l.lines.some(x => x.startsWith('hookpg')), 'internal lines are not relayed')
  })

  t.test('a program that does not decode is refused whole', async t => {
    const e = makeEnv(t, false)
    const marker = path.join(e.dir, 'marker')
    fs.writeFileSync(marker, 'x')
    const l = new Launch(encode([['name', 'x'], ['frobnicate', 'a'], ['teardown'], ['unlink', marker]]), e.log)
    t.teardown(() => l.kill())
    t.equal(await l.waitLine('fail '), 'fail decode 22 unknown op "frobnicate" in boot program')
    t.equal(await l.waitExit(), 2)
    t.ok(fs.existsSync(marker), 'nothing ran')
    const l2 = new Launch(Buffer.concat([encode([['name', 'x'], ['mkdir', '/tmp/y', '755', 'extra']])]), e.log)
    t.teardown(() => l2.kill())
    t.equal(await l2.waitLine('fail '), 'fail decode 22 too many arguments for op mkdir')
    const l3 = new Launch(encode([['name', 'x'], ['step', 'a']]), e.log)
    t.teardown(() => l3.kill())
    t.equal(await l3.waitLine('fail '), 'fail decode 22 no teardown op in boot program')
  })

  t.test('hostname before fork-pid1 is refused (it would rename the host)', async t => {
    const e = makeEnv(t, false)
    const l = new Launch(encode([['name', 'x'], ['step', 's'], ['hostname', 'evil'], ['teardown']]), e.log)
    t.teardown(() => l.kill())
    t.match(await l.waitLine('fail '), /^fail s 1 hostname before fork-pid1/)
    t.equal(await l.waitExit(), 1)
  })
}
