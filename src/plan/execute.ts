import { OverlayBootError, isOverlayBootError } from '../errors.js';
import { runHostAction, type HostActionContext } from '../host/actions.js';
import { launchSubhost, runTeardown, type LaunchStatus } from '../subhost/launch.js';
import { processId, type ProcessId } from '../subhost/process.js';
import { resolveUpper } from './build.js';
import type { BootEventListener } from './events.js';
import type { BootPlan, NativeOp, PlanStep } from './types.js';

export interface ExecuteOptions {
  launcher: string;
  logFd: number;
  onEvent?: BootEventListener;
  /** Create the state record (step `state`). */
  createState: (file: string, teardown: NativeOp[]) => void;
  /**
   * Record progress in the state record: the monitor once launched, pid 1 once
   * known, `running` before detaching. Called only while the monitor waits for us.
   */
  onProgress: (p: { monitor: ProcessId; pid1?: number; running?: boolean; teardown: NativeOp[] }) => void;
  /** Step id to fail on purpose, for fault-injection tests. */
  failStep?: string;
  /** Milliseconds for an external command on the host. Default 30000. */
  commandTimeoutMs?: number;
  /** Milliseconds from launch until the subhost must be ready. Default 120000. */
  bootTimeoutMs?: number;
  /** Keep the monitor attached (foreground mode): the caller waits on `exited`. */
  stayAttached?: boolean;
}

export interface ExecuteResult {
  monitor: ProcessId;
  pid1: number;
  /** The plan as run (UPPER resolved). */
  plan: BootPlan;
  /** Resolves when the monitor exits (only kept for stayAttached). */
  exited?: Promise<number | null>;
  stepTimes: Record<string, number>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

/** The teardown program for a set of done steps: their undos, last step first. */
export function teardownProgram(steps: PlanStep[], name: string): NativeOp[] {
  const ops: NativeOp[] = [{ op: 'name', args: [name] }];
  for (const s of [...steps].reverse()) ops.push(...s.undo);
  ops.push({ op: 'log', args: [`Exited ${name}`] });
  return ops;
}

/**
 * What undoes the host steps of a plan, last step first: the left-over cleanup of a
 * subhost that is not running and has no state record. Without the UPPER program's
 * teardown: a program of the config is run only for a boot that set it up (its record).
 */
export function hostUndo(plan: BootPlan): NativeOp[] {
  return [...plan.steps].reverse()
    .filter((s) => s.place === 'host' && !s.host.some((h) => h.kind === 'upper-setup'))
    .flatMap((s) => s.undo);
}

/**
 * Run a boot plan as one transaction: host steps here, then the native steps in
 * ovb-launch. Any failure undoes every done step in reverse, and the error names
 * the step, the variable and the config line.
 */
export async function executePlan(initial: BootPlan, options: ExecuteOptions): Promise<ExecuteResult> {
  let plan = initial;
  const emit = options.onEvent ?? (() => {});
  const env = { ...process.env, ...plan.env };
  const ctx: HostActionContext = {
    env: plan.env,
    timeoutMs: options.commandTimeoutMs ?? 30000,
    createState: (file) => options.createState(file, teardownProgram(plan.steps, plan.name)),
  };
  const done: PlanStep[] = [];
  const stepTimes: Record<string, number> = {};

  const rollback = async () => {
    emit({ type: 'rollback', steps: done.map((s) => s.id).reverse() });
    if (done.length) await runTeardown(options.launcher, teardownProgram(done, plan.name), options.logFd, env);
  };

  /** Run the host actions of one step; on failure undo the boot with `undoAll` and throw the step's error. */
  const runHostStep = async (step: PlanStep, undoAll: () => Promise<void>) => {
    emit({ type: 'step-start', step: step.id, title: step.title });
    const t0 = performance.now();
    // Undos are idempotent, so a step that fails half-way is undone as a whole: counted as done
    // before it runs. Except the state record: it is the lock, and a boot that lost the race
    // for it must not remove the winner's.
    const isLock = step.host[0]?.kind === 'state-record';
    if (!isLock) done.push(step);
    try {
      for (const action of step.host) {
        const r = await runHostAction(action, ctx);
        if (r.upper) {
          plan = resolveUpper(plan, r.upper);
          Object.assign(env, plan.env);
          ctx.env = plan.env;
        }
      }
      if (isLock) done.push(step);
      if (options.failStep === step.id) throw new OverlayBootError('FAULT_INJECTED', `fault injected at step ${step.id}`);
    } catch (cause) {
      const ms = performance.now() - t0;
      emit({ type: 'step-failed', step: step.id, title: step.title, durationMs: ms, error: String((cause as Error).message) });
      await undoAll();
      throw stepError(plan, step, cause);
    }
    stepTimes[step.id] = performance.now() - t0;
    emit({ type: 'step-done', step: step.id, title: step.title, durationMs: stepTimes[step.id]! });
  };

  // By index: the UPPER program's output rewrites the later steps of `plan` as we go.
  for (let i = 0; i < plan.steps.length; i++) {
    const step = plan.steps[i]!;
    if (step.when === 'running' || (!step.host.length && step.place !== 'host')) continue;
    await runHostStep(step, rollback);
  }

  // Native steps: ownership of the teardown passes to the monitor now.
  const native: NativeOp[] = [];
  const nativeSteps = plan.steps.filter((s) => s.place !== 'host' || s.native.length);
  for (const s of nativeSteps) {
    const ops = [...s.native];
    if (options.failStep === s.id) {
      // After the step's own work, so its undo is proved too; but before an exec, which never returns.
      const at = ops[ops.length - 1]?.op === 'exec' ? ops.length - 1 : ops.length;
      ops.splice(at, 0, { op: 'fail', args: [`fault injected at step ${s.id}`] });
    }
    native.push({ op: 'step', args: [s.id] }, ...ops);
  }
  const teardown = teardownProgram(plan.steps, plan.name);
  const handle = launchSubhost(options.launcher, native, teardown, options.logFd, env);
  // A record that cannot be written (a full state directory) ends the boot like a failed step.
  let progressError: unknown;
  const progress = (p: Parameters<ExecuteOptions['onProgress']>[0]) => {
    try {
      options.onProgress(p);
      return true;
    } catch (e) {
      progressError = e;
      return false;
    }
  };
  const launched = progress({ monitor: handle.monitor, teardown });
  const byId = new Map(plan.steps.map((s) => [s.id, s]));
  let current: { id: string; usec: number } | undefined;
  let pid1: number | undefined;
  let failure: LaunchStatus & { kind: 'fail' } | undefined;
  let ready = false;
  let initStatus = 0;
  const launchT0 = performance.now();
  const timeoutMs = options.bootTimeoutMs ?? 120000;
  const timer = setTimeout(() => handle.abandon(), timeoutMs);
  const finishStep = (usec: number) => {
    if (!current) return;
    const s = byId.get(current.id);
    const ms = (usec - current.usec) / 1000;
    stepTimes[current.id] = ms;
    emit({ type: 'step-done', step: current.id, title: s?.title ?? current.id, durationMs: ms });
  };
  for await (const st of launched ? handle.statuses : []) {
    if (st.kind === 'step') {
      finishStep(st.usec);
      current = { id: st.step, usec: st.usec };
      emit({ type: 'step-start', step: st.step, title: byId.get(st.step)?.title ?? st.step });
    } else if (st.kind === 'pid1') {
      pid1 = st.pid;
      if (!progress({ monitor: handle.monitor, pid1, teardown })) break;
    } else if (st.kind === 'fail') {
      failure = st;
      break;
    } else if (st.kind === 'ready') {
      ready = st.status === 0;
      initStatus = st.status;
      if (!ready) failure = { kind: 'fail', step: 'init', errno: 0, message: `the init script exited with status ${st.status}` };
      break;
    } else if (st.kind === 'exit') {
      break;
    }
  }
  clearTimeout(timer);

  if (ready && pid1 !== undefined && progressError === undefined) {
    if (current) {
      const ms = performance.now() - launchT0;
      emit({ type: 'step-done', step: current.id, title: byId.get(current.id)?.title ?? current.id, durationMs: ms });
    }
    const runningPid1 = pid1;
    // Not yet committed: a failure here ends the subhost (after `ready`, closing the control
    // pipe alone changes nothing: PROTOCOL.md), and its monitor undoes every step.
    const abandon = async () => {
      try { process.kill(runningPid1, 'SIGKILL'); } catch { /* gone */ }
      handle.abandon();
      await Promise.race([handle.exited, sleep(30000)]);
    };
    if (!progress({ monitor: handle.monitor, pid1, running: true, teardown })) {
      await abandon();
      throw stepError(plan, byId.get('state') ?? plan.steps[0]!, progressError);
    }
    ctx.running = { monitor: handle.monitor, pid1: processId(pid1) ?? { pid: pid1, start: 0 } };
    for (const step of plan.steps.filter((s) => s.when === 'running')) await runHostStep(step, abandon);
    if (options.stayAttached) {
      handle.detach(true);
      return { monitor: handle.monitor, pid1, stepTimes, plan, exited: handle.exited };
    }
    handle.detach();
    return { monitor: handle.monitor, pid1, stepTimes, plan };
  }

  // Failed: the monitor tears down; wait for it so the host is clean when we return.
  handle.abandon();
  await Promise.race([handle.exited, sleep(30000)]);
  if (progressError !== undefined) throw stepError(plan, byId.get('state') ?? plan.steps[0]!, progressError);
  const stepId = failure?.step ?? current?.id ?? 'init';
  const step = byId.get(stepId);
  if (step) emit({ type: 'step-failed', step: step.id, title: step.title, durationMs: 0, error: failure?.message ?? 'subhost ended' });
  if (!failure && !ready && performance.now() - launchT0 >= timeoutMs) {
    throw new OverlayBootError('BOOT_TIMEOUT', `${plan.name} was not ready after ${timeoutMs} ms; it was stopped and undone`,
      { step: stepId, name: plan.name, file: plan.configFile });
  }
  const message = failure ? failure.message : 'the subhost ended before it was ready';
  const code = failure?.message.startsWith('fault injected') ? 'FAULT_INJECTED'
    : step?.native.some((o) => o.op === 'hook') ? 'HOOK_FAILED'
    : stepId === 'init' || initStatus !== 0 ? 'SUBHOST_FAILED' : 'STEP_FAILED';
  throw new OverlayBootError(code, `${step?.title ?? stepId}: ${message}`, {
    step: stepId, variable: step?.variable, line: step?.line, file: plan.configFile, name: plan.name,
  });
}

function stepError(plan: BootPlan, step: PlanStep, cause: unknown): OverlayBootError {
  const where = { step: step.id, variable: step.variable, line: step.line, file: plan.configFile, name: plan.name, cause };
  if (isOverlayBootError(cause)) {
    return new OverlayBootError(cause.code, cause.message, { ...where, variable: cause.variable ?? step.variable, found: cause.found });
  }
  return new OverlayBootError('STEP_FAILED', `${step.title}: ${(cause as Error).message}`, where);
}
