// The bounded line splitter of the daemon and its client.
import t from 'tap';
import { LineSplitter } from '../../src/daemon/lines.js';

function feed(s: LineSplitter, chunks: string[]): { lines: string[]; ok: boolean } {
  const lines: string[] = [];
  let ok = true;
  for (const c of chunks) ok = s.push(Buffer.from(c), (l) => lines.push(l.toString())) && ok;
  return { lines, ok };
}

t.test('lines across and within chunks', async (t) => {
  t.same(feed(new LineSplitter(100), ['ab', 'c\nde', 'f\n\ng\nh']), { lines: ['abc', 'def', '', 'g'], ok: true }, 'h waits for its newline');
  t.same(feed(new LineSplitter(4), ['abcd\n', 'ab', 'cd', '\n']), { lines: ['abcd', 'abcd'], ok: true }, 'exactly the cap');
});

t.test('a line over the cap: false, as soon as the cap is passed, without its newline', async (t) => {
  const s = new LineSplitter(4);
  t.same(feed(s, ['ab', 'cde']), { lines: [], ok: false });
  t.same(feed(new LineSplitter(4), ['ok\nabcde\nnext\n']), { lines: ['ok'], ok: false }, 'the lines after it are dropped');
});
