import t from 'tap';
import { ERROR_CODES, OverlayBootError } from '../../src/errors.js';
import { ERROR_FAULTS, fault, faultCode, faultOf, FAULTS } from '../../src/lifecycle/faults.js';

t.test('the table holds every fault of LIFECYCLE.md with its USP equivalent', async (t) => {
  const pairs = Object.values(FAULTS).map((f) => [f.tr069, 'usp' in f ? f.usp : undefined]);
  t.same(pairs, [
    [9001, 7002], [9003, 7004], [9012, undefined], [9013, undefined], [9015, 7033], [9016, undefined], [9017, undefined],
    [9018, 7035], [7036, 7036], [9022, undefined], [9023, 7223], [9024, undefined], [9025, 7225], [9026, 7226],
    [9027, 7227], [9028, undefined], [9029, 7229], [9030, undefined], [9031, undefined], [9032, undefined],
  ]);
  t.equal(faultCode('DUPLICATE_DU'), 9026);
  t.same(fault('DOWNGRADE'), { FaultCode: 9030, FaultString: 'Invalid deployment unit update: downgrade not permitted' });
  t.same(fault('VERSION_EXISTS', '1.0 is installed'), { FaultCode: 9032, FaultString: '1.0 is installed' });
});

t.test('errors map to faults by code', async (t) => {
  for (const code of Object.keys(ERROR_FAULTS)) t.ok(code in ERROR_CODES, `${code} is a real code`);
  const cases: [keyof typeof ERROR_CODES, number][] = [
    ['PKG_CORRUPT', 9018], ['PKG_CHECKSUM', 9018], ['PKG_UNSAFE_PATH', 9018],
    ['PKG_BAD_SIGNATURE', 7036], ['PKG_UNKNOWN_KEY', 7036], ['PKG_UNSIGNED', 7036],
    ['PKG_UNREADABLE', 9016], ['PKG_TOO_LARGE', 9027], ['PKG_TEMPLATE_UNKNOWN', 9023],
    ['USAGE', 9003], ['STEP_FAILED', 9001],
  ];
  for (const [code, expected] of cases) {
    const f = faultOf(new OverlayBootError(code, 'because', { file: '/x.ipk', member: 'data.tar.gz' }));
    t.equal(f.FaultCode, expected, code);
    t.equal(f.FaultString, `${code}: /x.ipk: member data.tar.gz: because`);
  }
  t.same(faultOf(new Error('boom')), { FaultCode: 9001, FaultString: 'boom' });
  t.same(faultOf('text'), { FaultCode: 9001, FaultString: 'text' });
});
