import test from 'ava';
import { logFormatOf, logLine } from '../../common/log-line.ts';

const at = new Date('2026-12-02T21:00:00.000Z');

test('logLine() text: timestamp, source, level, message and quoted key=value fields', (t) => {
  t.is(
    logLine('text', 'milkywaysrvd', 'warn', 'peer refused', { peer: 'web-1', code: 'E_X', why: 'a b' }, at),
    '2026-12-02T21:00:00.000Z milkywaysrvd warn: peer refused peer=web-1 code=E_X why="a b"\n',
  );
});

test('logLine() json: one object a line with stable field names, parsed back', (t) => {
  const line = logLine(
    'json',
    'milkywaysrvd',
    'info',
    'CRLs reloaded',
    { job: 'j1', skipped: undefined },
    at,
  );
  t.true(line.endsWith('\n'));
  t.deepEqual(JSON.parse(line), {
    time: '2026-12-02T21:00:00.000Z',
    level: 'info',
    source: 'milkywaysrvd',
    msg: 'CRLs reloaded',
    job: 'j1',
  });
  t.is(logFormatOf(undefined, { MWAY_LOG_FORMAT: 'json' }), 'json');
  t.is(logFormatOf('text', { MWAY_LOG_FORMAT: 'json' }), 'text');
  t.is(logFormatOf(undefined, {}), 'text');
});
