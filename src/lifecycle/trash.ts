/**
 * The trash of an operation in flight, `STATE/trash/ID/`: a destructive step (removing a
 * DU's subhost directory or layer) is a rename into it, which the operation's undo or a
 * recovery reverses by renaming back; the commit deletes it. So "a failed uninstall
 * removes nothing" holds even across SIGKILL, and nothing is deleted before the
 * operation's point of no return. Renames need the path on the state directory's
 * filesystem (PKG_STATE_IO otherwise, before anything moved).
 */
import { lstatSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { OverlayBootError } from '../errors.js';
import { ensureDir, fsyncDir, removeDirIfEmpty } from './durable.js';
import { stateLayout } from './layout.js';

/** A path moved into the trash: journal it (as step data) before relying on it. */
export interface Trashed {
  /** Where it was. */
  from: string;
  /** Where it is now. */
  to: string;
}

/** The trash directory of operation `opId`. */
export function trashDir(stateDir: string, opId: number): string {
  return path.join(stateLayout(stateDir).trash, String(opId));
}

function moveDurably(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (e) {
    throw new OverlayBootError('PKG_STATE_IO', `cannot move ${from} to ${to}: ${(e as Error).message}`, { file: from, cause: e });
  }
  fsyncDir(path.dirname(to));
  if (path.dirname(from) !== path.dirname(to)) fsyncDir(path.dirname(from));
}

/**
 * The place `from` will take in operation `opId`'s trash: `INDEX-BASENAME`, INDEX
 * keeping two paths of the same name apart. Journal it, then {@link moveToTrash}.
 */
export function trashPlace(stateDir: string, opId: number, from: string, index: number): Trashed {
  return { from: path.resolve(from), to: path.join(trashDir(stateDir, opId), `${index}-${path.basename(from)}`) };
}

/** Moves `t.from` to `t.to` (creating the trash directory); done already (only `to` exists) is fine. */
export function moveToTrash(t: Trashed): void {
  if (!exists(t.from)) {
    if (exists(t.to)) return;
    throw new OverlayBootError('PKG_STATE_IO', `cannot move ${t.from} to the trash: it does not exist`, { file: t.from });
  }
  ensureDir(path.dirname(t.to));
  moveDurably(t.from, t.to);
}

/** Puts a trashed path back; already back (only `from` exists) is fine, so undo can run twice. */
export function restoreFromTrash(t: Trashed): void {
  if (!exists(t.to) && exists(t.from)) return;
  moveDurably(t.to, t.from);
}

/** Deletes operation `opId`'s trash, and `STATE/trash/` once empty: the commit of a removal. */
export function emptyTrash(stateDir: string, opId: number): void {
  const dir = trashDir(stateDir, opId);
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (e) {
    throw new OverlayBootError('PKG_STATE_IO', `cannot delete the trash: ${(e as Error).message}`, { file: dir, cause: e });
  }
  removeDirIfEmpty(stateLayout(stateDir).trash);
}

/** Whether `p` exists itself (a symlink counts, whatever it points to). */
function exists(p: string): boolean {
  return lstatSync(p, { throwIfNoEntry: false }) !== undefined;
}
