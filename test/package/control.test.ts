// The control stanza and conffiles parsers: real Debian control text, and every rule they refuse.
import t from 'tap';
import { parseControl, parseConffiles, controlField } from '../../src/package/control.js';

const HELLO = `Package: hello
Version: 2.10-3
Architecture: amd64
Maintainer: Santiago Vila <sanvila@debian.org>
Installed-Size: 280
Depends: libc6 (>= 2.34)
Section: devel
Priority: optional
Homepage: https://www.gnu.org/software/hello/
Description: example package based on GNU hello
 The GNU hello program produces a familiar, friendly greeting.
 .
 Seriously though: this is an example.
`;

t.test('a Debian control stanza: fields verbatim, continuation lines kept', async (t) => {
  const c = parseControl(HELLO);
  t.equal(c.package, 'hello');
  t.equal(c.version, '2.10-3');
  t.equal(c.architecture, 'amd64');
  t.equal(c.fields['Installed-Size'], '280');
  t.equal(c.fields.Description, 'example package based on GNU hello\n The GNU hello program produces a familiar, friendly greeting.\n .\n Seriously though: this is an example.');
  t.equal(controlField(c.fields, 'depends'), 'libc6 (>= 2.34)');
  t.equal(parseControl('\n\nPackage: a\nVersion: 1\nArchitecture: all\n\n\n').package, 'a');
  t.equal(parseControl('package: a\nversion: 1\narchitecture: all').package, 'a', 'field names are case-insensitive');
});

t.test('bad control text is PKG_BAD_CONTROL naming member, line and field', async (t) => {
  const base = 'Package: a\nVersion: 1.0\nArchitecture: all\n';
  const cases: [string, RegExp, number | undefined, string | undefined][] = [
    [`# comment\n${base}`, /comments/, 1, undefined],
    [` lead\n${base}`, /continuation/, 1, undefined],
    [`${base}\nPackage: b\n`, /more than one stanza/, 5, undefined],
    [`${base}Package: b\n`, /twice/, 4, 'Package'],
    [`${base}no colon here\n`, /not a "Field: value"/, 4, undefined],
    [`${base}-Bad: x\n`, /not a "Field: value"/, 4, undefined],
    ['Version: 1\nArchitecture: all\n', /Package is missing/, undefined, 'Package'],
    ['Package: A_b\nVersion: 1\nArchitecture: all\n', /not a package name/, 1, 'Package'],
    ['Package: a\nVersion: x1\nArchitecture: all\n', /not a valid Debian version/, 2, 'Version'],
    ['Package: a\nVersion: 1\n', /Architecture is missing/, undefined, 'Architecture'],
    ['Package: a\nVersion: 1\nArchitecture:\n', /Architecture is missing or empty/, undefined, 'Architecture'],
    ['Package: a\0\nVersion: 1\nArchitecture: all\n', /NUL/, undefined, undefined],
  ];
  for (const [text, msg, line, field] of cases) {
    t.throws(() => parseControl(text, { file: 'x.ipk' }), { code: 'PKG_BAD_CONTROL', message: msg, member: 'control', line, variable: field, file: 'x.ipk' }, JSON.stringify(text));
  }
});

t.test('conffiles: absolute paths, one a line', async (t) => {
  t.same(parseConffiles('/etc/a.conf\n\n  /etc/b\nremove-on-upgrade /etc/old\n'), ['/etc/a.conf', '/etc/b', '/etc/old']);
  t.throws(() => parseConffiles('/etc/a\netc/b\n'), { code: 'PKG_BAD_CONTROL', member: 'conffiles', line: 2 });
});
