// What the tests of overlay-pkg's daemon commands share: pkg.ini files naming a socket.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { DuEnv } from '../helpers/du.js';
import type { PkgConfig } from '../../src/package/config.js';
import { testConfig } from './helpers.js';

/** DIR/pkg.ini naming testConfig(DIR)'s state, templates and socket; the config and the file. */
export function writeTestIni(dir: string): { config: PkgConfig; ini: string } {
  const config = testConfig(dir);
  const ini = path.join(dir, 'pkg.ini');
  writeFileSync(ini, `[paths]\nstate = ${config.paths.state}\ntemplates = ${config.paths.templates}\nsocket = ${config.paths.socket}\n`);
  return { config, ini };
}

/** A copy of a lifecycle world's pkg.ini that names a socket in its directory; the socket and the file. */
export function socketIni(env: DuEnv): { socket: string; ini: string } {
  const socket = path.join(env.dir, 'pkgd.sock');
  const ini = path.join(env.dir, 'pkg-socket.ini');
  writeFileSync(ini, readFileSync(env.configFile, 'utf8').replace('[paths]\n', `[paths]\nsocket = ${socket}\n`));
  return { socket, ini };
}
