import t from 'tap';
import { parseCables, parseMac } from '../../src/config/cables.js';
import { thrown } from '../fixtures/config/helpers.js';

const where = { file: '/c.conf', line: 3, variable: 'CABLES' };
const names = (value: string, name = 'xmpl') => {
  const { cables, errors } = parseCables(value, name, where);
  t.same(errors, [], `no errors for ${JSON.stringify(value)}`);
  return cables.map((c) => [c.kind, c.hostIf, c.subhostIf, c.bridge ?? '', c.kind === 'veth' ? (c.mac ?? '') : c.vlan]);
};

t.test('good specifiers', async (t) => {
  const cases: Array<[string, Array<Array<string | number>>]> = [
    ['', []],
    ['   ', []],
    ['=', [['veth', 'xmpl0', 'eth0', '', '']]],
    ['br0=', [['veth', 'xmpl0', 'eth0', 'br0', '']]],
    ['=02:00:00:00:00:01', [['veth', 'xmpl0', 'eth0', '', '02:00:00:00:00:01']]],
    ['br0=02:AB:cd:00:00:01', [['veth', 'xmpl0', 'eth0', 'br0', '02:ab:cd:00:00:01']]],
    ['a= \t b=', [['veth', 'xmpl0', 'eth0', 'a', ''], ['veth', 'xmpl1', 'eth1', 'b', '']]],
    // The spec's own example.
    ['= =.302', [['veth', 'xmpl0', 'eth0', '', ''], ['vlan', 'xmpl0.302', 'eth0.302', '', 302]]],
    ['br0= br1=.1 =.4095 br2=', [
      ['veth', 'xmpl0', 'eth0', 'br0', ''],
      ['vlan', 'xmpl0.1', 'eth0.1', 'br1', 1],
      ['vlan', 'xmpl0.4095', 'eth0.4095', '', 4095],
      ['veth', 'xmpl1', 'eth1', 'br2', ''],
    ]],
    // The kernel accepts these bytes in a name; they are kept literally and never reach a shell.
    ['$(touch)=', [['veth', 'xmpl0', 'eth0', '$(touch)', '']]],
    ['= = =.7', [['veth', 'xmpl0', 'eth0', '', ''], ['veth', 'xmpl1', 'eth1', '', ''], ['vlan', 'xmpl1.7', 'eth1.7', '', 7]]],
  ];
  for (const [value, expected] of cases) t.same(names(value), expected, JSON.stringify(value));
  const [, vlan] = parseCables('= =.302', 'xmpl', where).cables;
  t.match(vlan, { kind: 'vlan', index: 0, hostCarrier: 'xmpl0', subhostCarrier: 'eth0', spec: '=.302' });
});

t.test('bad specifiers, each with its code, line and variable', async (t) => {
  const cases: Array<[string, string, string, RegExp?]> = [
    ['no =', 'br0', 'CONFIG_BAD_CABLE', /no "="/],
    ['VLAN 0', '= =.0', 'CONFIG_BAD_VLAN'],
    ['VLAN 4096', '= =.4096', 'CONFIG_BAD_VLAN'],
    ['VLAN not a number', '= =.x', 'CONFIG_BAD_VLAN'],
    ['VLAN empty', '= =.', 'CONFIG_BAD_VLAN'],
    ['VLAN negative', '= =.-1', 'CONFIG_BAD_VLAN'],
    ['VLAN without carrier', '=.302', 'CONFIG_BAD_VLAN', /no veth cable before it/],
    ['same VLAN twice', '= =.5 =.5', 'CONFIG_BAD_VLAN', /repeats interface xmpl0.5/],
    ['MAC too short', '=02:00:00:00:01', 'CONFIG_BAD_MAC'],
    ['MAC not hex', '=02:00:00:00:00:zz', 'CONFIG_BAD_MAC'],
    ['MAC with dashes', '=02-00-00-00-00-01', 'CONFIG_BAD_MAC'],
    ['multicast MAC', '=01:00:5e:00:00:01', 'CONFIG_BAD_MAC', /multicast/],
    ['broadcast MAC', '=ff:ff:ff:ff:ff:ff', 'CONFIG_BAD_MAC', /multicast/],
    ['zero MAC', '=00:00:00:00:00:00', 'CONFIG_BAD_MAC', /all zero/],
    ['bridge too long', 'abcdefghijklmnop=', 'CONFIG_BAD_CABLE', /bridge name/],
    ['bridge with /', 'br/0=', 'CONFIG_BAD_CABLE'],
    ['bridge with :', 'br:0=', 'CONFIG_BAD_CABLE'],
    ['bridge .', '.=', 'CONFIG_BAD_CABLE'],
    ['bridge ..', '..=', 'CONFIG_BAD_CABLE'],
    ['white space inside a bridge cannot happen: it splits', 'br 0=', 'CONFIG_BAD_CABLE', /no "="/],
  ];
  for (const [what, value, code, message] of cases) {
    const { errors } = parseCables(value, 'xmpl', where);
    t.equal(errors.length, 1, `${what}: one error`);
    t.match(errors[0], { code, file: '/c.conf', line: 3, variable: 'CABLES' }, what);
    if (message) t.match(errors[0]?.message, message, what);
  }
});

t.test('generated names must fit in 15 bytes', async (t) => {
  t.same(names('=', 'abcdefghijkl'), [['veth', 'abcdefghijkl0', 'eth0', '', '']], 'a 12-char NAME fits a veth');
  const { errors } = parseCables('= =.302', 'abcdefghijkl', where);
  t.equal(errors.length, 1);
  t.match(errors[0], { code: 'CONFIG_BAD_CABLE', message: /abcdefghijkl0\.302.*17 bytes.*at most 15/ });
  const many = parseCables(Array(11).fill('=').join(' '), 'abcdefghijklmno', where);
  t.ok(many.errors.length > 0, 'an over-long NAME yields over-long interface names');
});

t.test('every error is gathered, and broken cables still count', async (t) => {
  const { cables, errors } = parseCables('x =zz =.302 br0= =.9999', 'h', where);
  t.same(errors.map((e) => e.code), ['CONFIG_BAD_CABLE', 'CONFIG_BAD_MAC', 'CONFIG_BAD_VLAN']);
  t.same(cables.map((c) => c.hostIf), ['h1.302', 'h2'], 'the VLAN rides on the broken cable 1; br0 is cable 2');
});

t.test('parseMac', async (t) => {
  t.equal(parseMac('0A:1b:2C:3d:4E:5f', '=', where), '0a:1b:2c:3d:4e:5f');
  thrown(t, () => parseMac('03:00:00:00:00:00', '=', where), 'CONFIG_BAD_MAC');
});
