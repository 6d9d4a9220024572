// ovb-launch boot on the real kernel: overlay root, /dev, netns, pid 1 reaper, pivot, teardown.
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  BUSYBOX, Launch, alive, bootOps, build, cpuTicks, encode, hostMountsUnder, isRoot, logLines, makeEnv, sh, sleep,
  teardownOps,
} from './fixtures/helpers.js'

if (!isRoot || !BUSYBOX) {
  t.plan(0, 'needs root and busybox-static')
} else {
  const err = build()
  if (err) throw new Error(err)

  t.test('boots a subhost, then tears it down when its last process ends', async t => {
    const e = makeEnv(t)
    const marker = path.join(e.dir, 'marker')
    fs.writeFileSync(marker, 'x')
    const cg = fs.existsSync('/sys/fs/cgroup/unified/cgroup.procs') ? `/sys/fs/cgroup/unified/ovbt${process.pid}` : ''
    if (cg) {
      fs.mkdirSync(cg, { recursive: true })
      t.teardown(() => fs.rmSync(cg, { recursive: false, force: true }))
    }
    const hostHostname = os.hostname()
    const init = [
      'echo hello from init',
      'cat /proc/1/comm > /shared/comm',
      'readlink /proc/1/exe > /shared/exe',
      'hostname > /shared/hostname',
      'echo $$ > /shared/initpid',
      'mkfifo /shared/fifo',
      // the service: waits for a line on the fifo, then ends (and the subhost with it)
      '(read x < /shared/fifo; echo service got $x) &',
      'echo init done',
    ].join('\n')
    const ops = [
      ...bootOps(e, init, { extra: cg ? [['cgroup', cg]] : [] }),
      ...teardownOps(e, [['unlink', marker], ...(cg ? [['rmdir', cg, '3000']] : [])]),
    ]
    const l = new Launch(encode(ops), e.log)
    t.teardown(() => l.kill())

    const ready = await l.waitLine('ready ')
    t.equal(ready, 'ready 0', 'the init script ended with status 0')
    l.commit()
    t.ok(l.pid1 > 0, 'pid1 line gives the host pid of pid 1')
    const steps = l.lines.filter(x => x.startsWith('step ')).map(x => x.split(' ')[1])
    t.same(steps, ['premount', 'rootfs', 'postmount', 'namespaces', 'init'], 'step lines in order')
    t.match(l.lines.find(x => x.startsWith('step '))!, /^step premount \d+$/)

    t.equal(fs.readFileSync(path.join(e.shared, 'comm'), 'utf8').trim(), '.reaper', '/proc/1/comm inside is the reaper')
    t.equal(fs.readFileSync(path.join(e.shared, 'exe'), 'utf8').trim(), '/.reaper', '/proc/1/exe inside is /.reaper')
    t.equal(fs.readFileSync(path.join(e.shared, 'hostname'), 'utf8').trim(), e.host, 'hostname set inside')
    t.equal(os.hostname(), hostHostname, 'host hostname untouched')
    t.equal(fs.readFileSync(`/proc/${l.pid1}/comm`, 'utf8').trim(), '.reaper', 'host sees the reaper at pid1')
    t.same(hostMountsUnder(e.dir), [], 'the host mount table shows none of the subhost mounts')

    const ls = sh(`nsenter -t ${l.pid1} -m ls -a /`)
    t.equal(ls.status, 0)
    const names = ls.out.split(/\s+/).filter(Boolean)
    t.ok(names.includes('.reaper') && names.includes('shared') && names.includes('bin'), 'nsenter -m lands in the subhost root')
    t.notOk(names.includes('usr') || names.includes('work'), 'not in the host root')
    t.equal(sh(`nsenter -t ${l.pid1} -m -p -r -w /bin/ls /dev`).out.split(/\s+/).filter(Boolean).sort().join(' '), 'fd null shm zero', '/dev nodes')
    t.equal(sh(`nsenter -t ${l.pid1} -u hostname`).out.trim(), e.host, 'uts namespace has NAME')
    t.equal(fs.readlinkSync(`/proc/${l.pid1}/ns/net`), fs.readlinkSync(`/proc/${l.pid1}/ns/net`))
    t.equal(sh(`nsenter -t ${l.pid1} -m -r -w /bin/readlink /proc/1/ns/net`).out.trim(),
      sh(`ip netns exec ${e.netns} readlink /proc/self/ns/net`).out.trim(), 'pid 1 is in the netns')
    const pns = fs.readlinkSync(`/proc/${l.pid1}/ns/pid`)
    t.not(pns, fs.readlinkSync('/proc/self/ns/pid'), 'own pid namespace')
    if (cg) t.match(fs.readFileSync(cg + '/cgroup.procs', 'utf8'), new RegExp(`^${l.pid1}$`, 'm'), 'pid 1 in the cgroup')

    // idle: neither M nor the reaper uses CPU
    const m0 = cpuTicks(l.proc.pid!), r0 = cpuTicks(l.pid1)
    await sleep(1000)
    t.equal(cpuTicks(l.proc.pid!) - m0, 0, 'monitor idle CPU is zero')
    t.equal(cpuTicks(l.pid1) - r0, 0, 'reaper idle CPU is zero')

    // release the service: the last process ends, the reaper exits, M tears down
    t.equal(sh(`echo bye > ${e.shared}/fifo`).status, 0)
    t.equal(await l.waitLine('exit '), 'exit 0', 'pid 1 exited 0')
    t.equal(await l.waitLine('torn '), 'torn ok', 'teardown succeeded')
    t.equal(await l.waitExit(), 0, 'M exits 0')
    t.notOk(fs.existsSync(`/run/netns/${e.netns}`), 'netns deleted')
    t.notOk(fs.existsSync(marker), 'marker unlinked')
    if (cg) t.notOk(fs.existsSync(cg), 'cgroup removed')
    t.notOk(alive(l.pid1), 'pid 1 gone')
    const log = logLines(e.log)
    const msgs = log.map(x => x.msg)
    t.ok(msgs.includes('hello from init') && msgs.includes('init done') && msgs.includes('service got bye'), 'init and service output in the log')
    t.equal(msgs[msgs.length - 1], `Exited ${e.host}`, 'Exited NAME last')
    t.ok(msgs.some((m: string) => /^reaper .*: ended: no process left \(init script status 0\)$/.test(m)), 'reaper reports how it ended')
    for (const x of log) {
      t.equal(x.level, 30)
      t.equal(x.subhost, e.host)
      t.equal(x.pid, l.proc.pid)
      t.type(x.time, 'number')
    }
  })

  t.test('detach: the library goes away, the subhost keeps running', async t => {
    const e = makeEnv(t, false)
    const init = 'mkfifo /shared/fifo; (read x < /shared/fifo) &'
    const l = new Launch(encode([...bootOps(e, init), ...teardownOps(e)]), e.log)
    t.teardown(() => l.kill())
    t.equal(await l.waitLine('ready '), 'ready 0')
    l.detach()
    await sleep(300)
    t.ok(alive(l.pid1) && l.code === undefined, 'still running after detach')
    sh(`echo go > ${e.shared}/fifo`)
    t.equal(await l.waitExit(), 0, 'M ends when the subhost ends')
    t.notOk(l.lines.some(x => x.startsWith('exit ')), 'no status lines after detach')
    t.equal(logLines(e.log).pop()?.msg, `Exited ${e.host}`)
  })

  t.test('log relay: JSON escaping and long lines split at 4 KiB', async t => {
    const e = makeEnv(t, false)
    const init = [
      `printf 'q"uote\\\\back\\ttab\\001ctl\\n'`,
      `head -c 10000 /dev/zero | tr '\\0' a; echo`,
      'printf "no newline at the end"',
    ].join('\n')
    const l = new Launch(encode([...bootOps(e, init), ...teardownOps(e)]), e.log)
    t.teardown(() => l.kill())
    t.equal(await l.waitLine('ready '), 'ready 0')
    l.commit()
    t.equal(await l.waitExit(), 0)
    const msgs = logLines(e.log).filter(x => x.source === 'subhost').map(x => x.msg)
    t.ok(msgs.includes('q"uote\\back\ttab\u0001ctl'), 'quote, backslash and control characters survive')
    const as = msgs.filter((m: string) => /^a+$/.test(m)).map((m: string) => m.length)
    t.same(as, [4096, 4096, 1808], 'a 10000-byte line is split in 4096-byte lines')
    // the reaper's own last line follows on the same pipe
    t.ok(msgs.some((m: string) => m.startsWith('no newline at the end')), 'a last line without newline is kept')
    const raw = fs.readFileSync(e.log, 'utf8')
    // eslint-disable-next-line no-control-regex -- finding raw control characters is the point
    t.notMatch(raw, /[\u0000-\u0009\u000b-\u001f]/, 'no raw control characters in the file')
  })

  t.test('M forwards SIGTERM to pid 1 once ready; the reaper stops everything', async t => {
    const e = makeEnv(t, false)
    const init = 'sleep 1000 & sleep 1000 &'
    const l = new Launch(encode([...bootOps(e, init), ...teardownOps(e)]), e.log)
    t.teardown(() => l.kill())
    t.equal(await l.waitLine('ready '), 'ready 0')
    l.commit()
    process.kill(l.proc.pid!, 'SIGTERM')
    t.equal(await l.waitLine('exit '), 'exit 0')
    t.equal(await l.waitLine('torn '), 'torn ok')
    t.equal(await l.waitExit(), 0)
    t.ok(logLines(e.log).some(x => /stopped by SIGTERM, all processes ended/.test(x.msg)))
  })
}
