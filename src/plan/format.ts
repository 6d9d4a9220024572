import type { SubhostConfig } from '../config/types.js';
import type { BootPlan, HostAction, NativeOp } from './types.js';

function describeHost(a: HostAction): string {
  switch (a.kind) {
    case 'state-record': return `create ${a.path} (exclusive)`;
    case 'upper-setup': return `ACTION=setup ${a.program}`;
    case 'ip': return a.commands.map((c) => `ip ${a.netns ? `-n ${a.netns} ` : ''}${c}`).join('; ');
    case 'ifup': return `ifup ${a.iface} || ip link set ${a.iface} up`;
    case 'cgroup': return `mkdir ${a.path}`;
    case 'pidfile': return `write the monitor's pid to ${a.path}`;
    case 'fast-stop': return `write ${a.path}: real path of ${a.config}, ${a.name}, pid 1 and monitor (pid, start time), STOP_TIMEOUT ${a.stopTimeout}`;
    case 'cgroup-set': return `echo ${a.value} > ${a.path}`;
  }
}

function describeOp(o: NativeOp): string {
  const a = o.args;
  switch (o.op) {
    case 'mount': return `mount -t ${a[2] || '(none)'} ${a[0]} ${a[1]}${a[3] ? ` -o ${a[3]}` : ''}${a[4] ? ` (${a[4]})` : ''}`;
    case 'mount-overlay': return `mount -t overlay overlay ${a[0]} (upperdir=${a[1]}, workdir=${a[2]}, ${a.slice(3).map((l) => `lowerdir+=${l}`).join(', ')})`;
    case 'mknod': return `mknod ${a[0]} ${a[1]} ${a[2]} ${a[3]} mode ${a[4]} owner ${a[5]}:${a[6]}`;
    case 'hook': return `sh -c ${JSON.stringify(a[1])} (at most ${Number(a[0]) / 1000} s)`;
    case 'setenv':
      if (a[0] === 'OVB_INIT') return 'init script (below)';
      if (a[0] === 'OVB_RUN') return `supervise (restart with back-off): ${a[1]!.split('\n').join(' | ')}`;
      if (a[0] === 'OVB_STOP') return `at shutdown, first: ${a[1]!.split('\n').join('; ')}`;
      if (a[0] === 'OVB_STOP_TIMEOUT') return `grace period before KILL: ${a[1]} s`;
      return `${a[0]}=${a[1]}`;
    case 'run': return `${a.slice(2).join(' ')}`;
    case 'root': return `resolve the paths below ${a[0]} inside it (links stay inside)`;
    case 'write-if-missing': return `write ${a[0]} (mode ${a[1]}) unless it exists`;
    default: return [o.op, ...a].join(' ');
  }
}

/** The plan as an administrator reads it: each step, what it does, what undoes it. */
export function formatPlan(config: SubhostConfig, plan: BootPlan): string {
  const out: string[] = [];
  out.push(`subhost ${plan.name}  (config ${plan.configFile})`);
  out.push(`root: ${config.rootVariant}   log: ${plan.log}`);
  for (const w of config.warnings) out.push(`warning: ${w.line ? `line ${w.line}: ` : ''}${w.variable ? `${w.variable}: ` : ''}${w.message}`);
  out.push('');
  plan.steps.forEach((s, i) => {
    const where = s.variable ? `  [${s.variable}${s.line ? `, line ${s.line}` : ''}]` : '';
    out.push(`${String(i + 1).padStart(2)}. ${s.id} (${s.place}): ${s.title}${where}`);
    for (const a of s.host) out.push(`      do: ${describeHost(a)}`);
    for (const o of s.native) {
      // Hook environment is listed once in the JSON plan; here only what the reaper will do.
      if (o.op === 'setenv' && !['OVB_INIT', 'OVB_RUN', 'OVB_STOP', 'OVB_STOP_TIMEOUT'].includes(o.args[0]!)) continue;
      if (o.op === 'setenv' && ['OVB_RUN', 'OVB_STOP'].includes(o.args[0]!) && !o.args[1]) continue;
      out.push(`      do: ${describeOp(o)}`);
    }
    if (s.when === 'running') out.push('      when: the subhost is up (START returned), before the boot commits');
    if (s.undoTitle) out.push(`    undo: ${s.undoTitle}`);
  });
  if (plan.initScript !== undefined) {
    out.push('', 'init script (run by /bin/sh in the subhost, reaper as pid 1):');
    for (const l of plan.initScript.trimEnd().split('\n')) out.push(`    ${l}`);
  } else if (config.init) {
    out.push('', `init script: the output of INIT (${config.init}), run at boot`);
  }
  return out.join('\n') + '\n';
}
