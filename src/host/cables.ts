import type { Cable } from '../config/types.js';
import type { HostAction, NativeOp } from '../plan/types.js';

/**
 * The host-side commands that create one cable. A veth's subhost end is
 * created directly inside the namespace, so `eth0` never exists on the host
 * (where it would collide with the host's own eth0).
 */
export function cableActions(name: string, cable: Cable): HostAction[] {
  // One `ip -batch` for the host side: one process per cable, not one per command.
  const host: string[] = [];
  const actions: HostAction[] = [];
  if (cable.kind === 'veth') {
    const peer = ['peer', 'name', cable.subhostIf];
    if (cable.mac) peer.push('address', cable.mac);
    host.push(['link', 'add', cable.hostIf, 'type', 'veth', ...peer, 'netns', name].join(' '));
  } else {
    host.push(`link add link ${cable.hostCarrier} name ${cable.hostIf} type vlan id ${cable.vlan}`);
    actions.push({
      kind: 'ip',
      netns: name,
      commands: [`link add link ${cable.subhostCarrier} name ${cable.subhostIf} type vlan id ${cable.vlan}`],
    });
  }
  if (cable.bridge) host.push(`link set ${cable.hostIf} master ${cable.bridge} up`);
  actions.unshift({ kind: 'ip', commands: host });
  if (!cable.bridge) actions.push({ kind: 'ifup', iface: cable.hostIf });
  return actions;
}

/** Deleting the host end deletes its peer (and the VLANs on it) too. */
export function cableUndo(cable: Cable): NativeOp[] {
  return [{ op: 'del-link', args: [cable.hostIf] }];
}

export function describeCable(cable: Cable): string {
  const where = cable.bridge ? `on bridge ${cable.bridge}` : 'ifup, else link up';
  if (cable.kind === 'veth') {
    return `veth ${cable.hostIf} <-> ${cable.subhostIf}${cable.mac ? ` (MAC ${cable.mac})` : ''}, ${where}`;
  }
  return `VLAN ${cable.vlan}: ${cable.hostIf} over ${cable.hostCarrier} <-> ${cable.subhostIf} over ${cable.subhostCarrier}, ${where}`;
}
