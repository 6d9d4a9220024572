import { realpath, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { OverlayBootError } from '../errors.js';
import type { InnerLayer } from './types.js';
import { configError, type Where } from './where.js';

/** statfs f_type of overlayfs. */
const OVERLAYFS_MAGIC = 0x794c7630;

/** Where the inner overlay's workdir goes: beside WORK, one per WORK. */
export function innerLayerWorkdir(work: string): string {
  return path.join(path.dirname(work), `.${path.basename(work)}.layer-work`);
}

async function below(dir: string, root: string): Promise<boolean> {
  const [d, r] = await Promise.all([stat(dir), stat(root)]);
  if (d.dev !== r.dev) return false;
  const rel = path.relative(root, dir);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * overlayfs refuses a lower layer that lies inside another lower layer's tree (ELOOP,
 * "overlapping lowerdir path"), but checks only the lowers so. A single such layer can
 * be the read-only upper of an inner overlay over LOWER instead; the subhost's overlay
 * then takes that inner overlay as its lower. Returns that layer, or undefined when no
 * layer overlaps LOWER (the single overlay mount serves). Throws when it cannot work.
 */
export async function innerLayer(layout: { lower: string; work: string; layers: string[] }, where: Where): Promise<InnerLayer | undefined> {
  if (!layout.layers.length) return undefined;
  const lower = await realpath(layout.lower);
  const overlapping: string[] = [];
  for (const layer of layout.layers) if (await below(layer, lower)) overlapping.push(layer);
  const [layer] = overlapping;
  if (layer === undefined) return undefined;
  const fail = (message: string, expected: string, found: string): OverlayBootError =>
    configError('CONFIG_BAD_PATH', message, where, { expected, found });
  if (overlapping.length > 1) {
    throw fail(`LAYERS ${overlapping.join(', ')} lie inside LOWER ${lower} on its filesystem; overlayfs refuses such overlapping layers, and only one of them can be mounted as the upper of an inner overlay. Keep at most one layer inside LOWER (move the others to another filesystem or outside LOWER's tree)`,
      'at most one layer inside LOWER', overlapping.join(' '));
  }
  if ((await statfs(lower)).type === OVERLAYFS_MAGIC) {
    throw fail(`LAYERS ${layer} lies inside LOWER ${lower}, which is itself an overlayfs: the inner overlay needed for that layer would stack overlays three deep, more than the kernel allows. Move the layer outside LOWER's tree or to another filesystem`,
      'LOWER not an overlayfs when a layer lies inside it', `${lower} is an overlayfs`);
  }
  const workdir = innerLayerWorkdir(layout.work);
  const parent = path.dirname(workdir);
  if ((await stat(parent)).dev !== (await stat(layer)).dev) {
    throw fail(`LAYERS ${layer} lies inside LOWER ${lower} and is mounted as the upper of an inner overlay, whose workdir ${workdir} must be on the layer's filesystem; ${parent} is not. Put WORK's directory on that filesystem or move the layer outside LOWER's tree`,
      `${parent} on the filesystem of ${layer}`, `${parent} on another filesystem`);
  }
  return { layer, workdir };
}
