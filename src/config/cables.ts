import type { OverlayBootError } from '../errors.js';
import type { Cable, VethCable, VlanCable } from './types.js';
import { ifnameProblem } from './ifname.js';
import { configError, type Where } from './where.js';

export interface ParsedCables {
  cables: Cable[];
  /** Every problem found; the cables list then holds only the good specifiers. */
  errors: OverlayBootError[];
}

/**
 * Parses CABLES: white-space separated `[bridge]=[mac | .vlan]` specifiers. Veth cable
 * i (VLANs not counted) is `NAME<i>` on the host and `eth<i>` in the subhost; a VLAN
 * `.N` rides on the nearest previous veth cable as `NAME<i>.N` / `eth<i>.N`.
 */
export function parseCables(value: string, name: string, where: Where): ParsedCables {
  const cables: Cable[] = [];
  const errors: OverlayBootError[] = [];
  let carrier: VethCable | undefined;
  let vethCount = 0;
  for (const spec of value.split(/\s+/).filter((s) => s !== '')) {
    try {
      const cable = parseCable(spec, name, vethCount, carrier, where);
      if (cable.kind === 'veth') {
        carrier = cable;
        vethCount += 1;
      }
      cables.push(cable);
    } catch (e) {
      errors.push(e as OverlayBootError);
      // A broken veth cable still counts and still carries later VLANs, so the
      // following specifiers get the names and the errors the admin expects.
      if (!spec.slice(spec.indexOf('=') + 1).startsWith('.')) {
        carrier = { kind: 'veth', index: vethCount, hostIf: `${name}${vethCount}`, subhostIf: `eth${vethCount}`, spec };
        vethCount += 1;
      }
    }
  }
  // A loop, not push(...): there may be more duplicates than the stack takes arguments.
  for (const e of duplicateNames(cables, where)) errors.push(e);
  return { cables, errors };
}

function parseCable(spec: string, name: string, index: number, carrier: VethCable | undefined, where: Where): Cable {
  const eq = spec.indexOf('=');
  if (eq === -1) {
    throw configError('CONFIG_BAD_CABLE', `cable "${spec}" has no "="; write [bridge]=[mac | .vlan]`, where, {
      expected: '[bridge]=[mac | .vlan]',
      found: spec,
    });
  }
  const bridge = spec.slice(0, eq) || undefined;
  const rest = spec.slice(eq + 1);
  if (bridge !== undefined) checkIfname(bridge, `bridge name "${bridge}" in cable "${spec}"`, where);
  if (rest.startsWith('.')) return vlanCable(spec, rest.slice(1), bridge, carrier, where);
  const cable: VethCable = {
    kind: 'veth',
    index,
    hostIf: `${name}${index}`,
    subhostIf: `eth${index}`,
    spec,
  };
  if (bridge !== undefined) cable.bridge = bridge;
  if (rest !== '') cable.mac = parseMac(rest, spec, where);
  checkIfname(cable.hostIf, `host interface name "${cable.hostIf}" of cable "${spec}"`, where);
  return cable;
}

function vlanCable(spec: string, tag: string, bridge: string | undefined, carrier: VethCable | undefined, where: Where): VlanCable {
  if (!/^[0-9]{1,4}$/.test(tag) || Number(tag) < 1 || Number(tag) > 4095) {
    throw configError('CONFIG_BAD_VLAN', `VLAN tag "${tag}" in cable "${spec}" is not a number from 1 to 4095`, where, {
      expected: '1..4095',
      found: tag,
    });
  }
  if (carrier === undefined) {
    throw configError('CONFIG_BAD_VLAN', `VLAN cable "${spec}" has no veth cable before it to ride on`, where, {
      expected: 'a [bridge]=[mac] cable before the VLAN',
      found: spec,
    });
  }
  const vlan = Number(tag);
  const cable: VlanCable = {
    kind: 'vlan',
    index: carrier.index,
    vlan,
    hostIf: `${carrier.hostIf}.${vlan}`,
    subhostIf: `${carrier.subhostIf}.${vlan}`,
    hostCarrier: carrier.hostIf,
    subhostCarrier: carrier.subhostIf,
    spec,
  };
  if (bridge !== undefined) cable.bridge = bridge;
  checkIfname(cable.hostIf, `host VLAN interface name "${cable.hostIf}" of cable "${spec}"`, where);
  return cable;
}

/**
 * Parses a MAC for the subhost end. Multicast addresses (low bit of the first octet)
 * and the all-zero address are refused: the kernel rejects them on a veth, and
 * failing here names the line instead of a half-built network.
 */
export function parseMac(text: string, spec: string, where: Where): string {
  const found = { expected: 'six colon-separated hex pairs, unicast, not all zero', found: text };
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) {
    throw configError('CONFIG_BAD_MAC', `MAC address "${text}" in cable "${spec}" is not six colon-separated hex pairs`, where, found);
  }
  const mac = text.toLowerCase();
  if ((parseInt(mac.slice(0, 2), 16) & 1) === 1) {
    throw configError('CONFIG_BAD_MAC', `MAC address "${text}" in cable "${spec}" is a multicast address`, where, found);
  }
  if (mac === '00:00:00:00:00:00') {
    throw configError('CONFIG_BAD_MAC', `MAC address "${text}" in cable "${spec}" is all zero`, where, found);
  }
  return mac;
}

function checkIfname(ifname: string, what: string, where: Where): void {
  const problem = ifnameProblem(ifname);
  if (problem !== undefined) {
    throw configError('CONFIG_BAD_CABLE', `${what} ${problem}`, where, {
      expected: 'a Linux interface name (1..15 bytes)',
      found: ifname,
    });
  }
}

// Two VLANs with the same tag on one carrier would ask the kernel for one name twice.
function duplicateNames(cables: Cable[], where: Where): OverlayBootError[] {
  const seen = new Set<string>();
  const errors: OverlayBootError[] = [];
  for (const cable of cables) {
    if (seen.has(cable.hostIf)) {
      errors.push(
        configError('CONFIG_BAD_VLAN', `cable "${cable.spec}" repeats interface ${cable.hostIf}`, where, { found: cable.spec }),
      );
    }
    seen.add(cable.hostIf);
  }
  return errors;
}
