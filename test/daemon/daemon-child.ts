// A daemon of the library as a process of its own, for the tests that SIGKILL it
// (bundled by test/daemon/daemon-process.ts): `daemon-child CONFIG SOCKET`, logs to
// stderr; SIGTERM closes it (waiting for the operation running) and exits 0.
import { createPkgDaemon } from '../../src/daemon/index.js';
import { readPkgConfig } from '../../src/package/config.js';

const [configFile, socket] = process.argv.slice(2);
const daemon = createPkgDaemon({
  config: readPkgConfig({ file: configFile }),
  socketPath: socket,
  log: (l) => process.stderr.write(`${new Date().toISOString()} ${l}\n`),
});
process.once('SIGTERM', () => {
  void daemon.close().then(() => process.exit(0));
});
await daemon.listen();
