import t from 'tap';
import { execFileSync } from 'node:child_process';
import {
  deriveSubhostName, duIdentity, duUuid, encodeDuName, euid, isSubhostName, NAMESPACE_DNS, uuidV5, vendorOf,
} from '../../src/lifecycle/identity.js';
import { parseControl } from '../../src/package/control.js';

/** Python's uuid module computes the same UUID independently. */
function pythonUuid5(name: string): string {
  return execFileSync('python3', ['-c', 'import sys, uuid; print(uuid.uuid5(uuid.NAMESPACE_DNS, sys.argv[1]))', name], { encoding: 'utf8' }).trim();
}

t.test('uuidV5 matches the known vector and Python for other names', async (t) => {
  t.equal(uuidV5(NAMESPACE_DNS, 'python.org'), '886313e1-3b8a-5372-9b90-0c9aee199e5d');
  for (const name of ['python.org', 'hello.example.org.', 'lib%2Bfoo.unknown.', 'ü.example.', '']) {
    t.equal(uuidV5(NAMESPACE_DNS, name), pythonUuid5(name), JSON.stringify(name));
  }
  t.throws(() => uuidV5('not-a-uuid', 'x'), { code: 'INTERNAL' });
});

t.test('Name is percent-encoded outside [0-9a-zA-Z_-]', async (t) => {
  t.equal(encodeDuName('hello'), 'hello');
  t.equal(encodeDuName('lib.foo+bar_1-2'), 'lib%2Efoo%2Bbar_1-2');
  t.equal(encodeDuName('ü'), '%C3%BC');
  t.equal(duUuid('lib.foo', 'example.org'), pythonUuid5('lib%2Efoo.example.org.'));
});

t.test('Vendor is the Maintainer e-mail domain, else unknown', async (t) => {
  t.equal(vendorOf('Jane Doe <jane@Example.ORG>'), 'example.org');
  t.equal(vendorOf('ops@lan.example.com'), 'lan.example.com');
  t.equal(vendorOf('Team X <x@example.org.>'), 'example.org');
  t.equal(vendorOf('Jane Doe'), 'unknown');
  t.equal(vendorOf(undefined), 'unknown');
  t.equal(vendorOf('J <j@-bad-.example>'), 'unknown');
  t.equal(vendorOf('J <j@exa mple.org>'), 'unknown');
});

t.test('duIdentity from a control file', async (t) => {
  const control = parseControl('Package: web.srv\nVersion: 1.0\nArchitecture: all\nMaintainer: W <w@acme.io>\n', {});
  const id = duIdentity(control);
  t.same(id, { Name: 'web.srv', Vendor: 'acme.io', UUID: pythonUuid5('web%2Esrv.acme.io.') });
  const anon = duIdentity(parseControl('Package: x\nVersion: 1\nArchitecture: all\n', {}));
  t.equal(anon.Vendor, 'unknown');
  t.equal(anon.UUID, pythonUuid5('x.unknown.'));
});

t.test('subhost NAME: the package name when valid and free, else short and unique', async (t) => {
  const uuid = duUuid('hello', 'example.org');
  t.equal(deriveSubhostName('hello', uuid, new Set()), 'hello');
  const taken = deriveSubhostName('hello', uuid, new Set(['hello']));
  t.match(taken, /^hello-[0-9a-f]{4}$/);
  t.equal(deriveSubhostName('hello', uuid, new Set(['hello'])), taken, 'stable for the same UUID');
  const third = deriveSubhostName('hello', uuid, new Set(['hello', taken]));
  t.not(third, taken);
  t.ok(isSubhostName(third));
  for (const name of ['lib.foo+bar', 'averyveryverylongpackagename', '0-9', '+x', '.']) {
    const n = deriveSubhostName(name, duUuid(name, 'unknown'), new Set());
    t.ok(isSubhostName(n), `${name} -> ${n}`);
    t.ok(n.length <= 12);
  }
  t.match(deriveSubhostName('lib.foo+bar', duUuid('lib.foo+bar', 'unknown'), new Set()), /^lib-foo-[0-9a-f]{4}$/);
  t.match(deriveSubhostName('+.', duUuid('+.', 'unknown'), new Set()), /^du-[0-9a-f]{4}$/);
  t.equal(euid('web', 'httpd'), 'web/httpd');
});
