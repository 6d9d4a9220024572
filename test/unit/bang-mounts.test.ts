// Which mounts a config read claims (src/config/bang-mounts.ts attributeMounts): the
// reported ones that are new and mounted, and, as the fallback, new mounts within the
// config's own directories; never a sibling config's. Pure: mount tables are given.
import t from 'tap';
import { attributeMounts, type MountScope } from '../../src/config/bang-mounts.js';

const before = new Set(['/', '/proc', '/etc/ovb/a/old']);
const scope: MountScope = { configDir: '/etc/ovb', base: '/etc/ovb/a', paths: ['/etc/ovb/a/live', '/srv/disks/a/rootfs', '/'] };
const claim = (reported: string[], added: string[]) => attributeMounts({ reported, before, after: new Set([...before, ...added]), scope });

t.same(claim(['/etc/ovb/a/mnt'], ['/etc/ovb/a/mnt', '/etc/ovb/b/mnt']), ['/etc/ovb/a/mnt'], 'a sibling config\'s new mount is not claimed');
t.same(claim(['/etc/ovb/b/mnt'], ['/etc/ovb/b/mnt']), ['/etc/ovb/b/mnt'], 'a reported mount is claimed wherever it is');
t.same(claim(['/etc/ovb/a/gone'], []), [], 'a reported mount that is not mounted is not claimed');
t.same(claim(['/etc/ovb/a/old'], []), [], 'nor one that was mounted before');
t.same(claim(['relative/mnt'], ['relative/mnt']), [], 'nor a relative path');
t.same(claim([], ['/etc/ovb/a/x', '/etc/ovb/a/x/y']), ['/etc/ovb/a/x/y', '/etc/ovb/a/x'], 'fallback: new mounts below BASE, deepest first');
t.same(claim([], ['/srv/disks/a']), ['/srv/disks/a'], 'fallback: a mount above a path value');
t.same(claim([], ['/srv/disks']), ['/srv/disks'], 'fallback: higher up too');
t.same(claim([], ['/srv/other']), [], 'fallback: not beside the path values');
t.same(claim([], ['/etc/ovb']), ['/etc/ovb'], 'fallback: the config directory itself');
t.same(claim([], ['/etc/ovb/c']), [], 'fallback: not a sibling below the config directory');
t.same(claim([], ['/etc/ovb/ab']), [], 'fallback: a prefix that is not a parent does not count');
t.same(attributeMounts({ reported: [], before: new Set(), after: new Set(['/']), scope }), [], 'never /');
