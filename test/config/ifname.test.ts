import t from 'tap';
import { ifnameProblem } from '../../src/config/ifname.js';

t.test('Linux interface names', async (t) => {
  const cases: Array<[string, RegExp | undefined]> = [
    ['eth0', undefined],
    ['br-lan.302', undefined],
    ['abcdefghijklmno', undefined],
    ['abcdefghijklmnop', /16 bytes/],
    ['ééééééééé', /18 bytes/],
    ['', /empty/],
    ['.', /"\."/],
    ['..', /"\."/],
    ['a/b', /"\/"/],
    ['a:b', /":"/],
    ['a b', /white space/],
    ['a\tb', /white space/],
  ];
  for (const [name, problem] of cases) {
    if (problem === undefined) t.equal(ifnameProblem(name), undefined, JSON.stringify(name));
    else t.match(ifnameProblem(name), problem, JSON.stringify(name));
  }
});
