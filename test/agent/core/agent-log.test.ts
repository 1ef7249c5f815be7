// The agent's own log lines: text with a timestamp, level and key=value fields, or one JSON
// object a line (--log-format json, MWAY_LOG_FORMAT, the config's logFormat), the same line
// as the broker's (common/log-line.ts). Unit checks of the logger, then the agent itself in a
// PID namespace, each of its lines read back with JSON.parse.
import test from 'ava';
import { createAgentLogger } from '../../../agent/core/agent-log.ts';
import { FailureReporter } from '../../../agent/services/failure-report.ts';
import { makePki, makeRoot, startAgent } from '../_namespace.ts';

const AT = new Date('2026-12-03T08:00:00.000Z');

test('createAgentLogger() writes text lines with fields, or JSON lines with the same fields', (t) => {
  const lines: string[] = [];
  const logger = createAgentLogger({ kmsg: false, console: (l) => lines.push(l), now: () => AT });
  logger.log('error', 'layer web refused: E_LAYER_SIGNATURE: bad', {
    layer: 'web',
    code: 'E_LAYER_SIGNATURE',
  });
  t.is(
    lines[0],
    '2026-12-03T08:00:00.000Z milkyway-agent error: layer web refused: E_LAYER_SIGNATURE: bad layer=web code=E_LAYER_SIGNATURE\n',
  );
  logger.setFormat('json');
  t.is(logger.format, 'json');
  logger.log('warn', 'service web/api failed', { service: 'web/api', layer: 'web', job: undefined });
  t.deepEqual(JSON.parse(lines[1] as string), {
    time: '2026-12-03T08:00:00.000Z',
    level: 'warn',
    source: 'milkyway-agent',
    msg: 'service web/api failed',
    service: 'web/api',
    layer: 'web',
  });
  t.true((lines[1] as string).endsWith('}\n'), 'one object, one line');
  // What `status` shows stays the text form whatever the console gets.
  t.deepEqual(logger.recent(), [
    (lines[0] as string).slice(0, -1),
    '2026-12-03T08:00:00.000Z milkyway-agent warn: service web/api failed service=web/api layer=web',
  ]);
});

test('a value with spaces, quotes or = is quoted in text; a message with a newline stays one JSON line', (t) => {
  const lines: string[] = [];
  const logger = createAgentLogger({
    kmsg: false,
    console: (l) => lines.push(l),
    now: () => AT,
    format: 'text',
  });
  logger.log('info', 'x', { operator: 'CN=ops team', peer: 'p1' });
  t.regex(lines[0] as string, / operator="CN=ops team" peer=p1\n$/);
  logger.setFormat('json');
  logger.log('info', 'two\nlines', {});
  t.is((lines[1] as string).split('\n').length, 2, 'the newline is escaped inside the JSON string');
  t.is((JSON.parse(lines[1] as string) as { msg: string }).msg, 'two\nlines');
});

test('a service failure is logged with its service and layer as fields', (t) => {
  const got: unknown[] = [];
  const r = new FailureReporter((level, message, fields) => got.push({ level, message, fields }));
  r.changed({
    name: 'web/api',
    layer: 'web',
    state: 'failed',
    restarts: 5,
    since: AT.toISOString(),
    error: 'exit status 1',
    lastOutput: ['boom'],
    limitsNotApplied: [],
  });
  t.like(got[0], { level: 'error', fields: { service: 'web/api', layer: 'web' } });
});

/** Every line the agent printed, parsed as JSON (fails the test on a line that is not). */
function jsonLines(t: import('ava').ExecutionContext, out: string): Record<string, unknown>[] {
  const lines = out.split('\n').filter((l) => l !== '');
  t.true(lines.length > 3, out);
  return lines.map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      t.fail(`not a JSON line: ${l}`);
      return {};
    }
  });
}

test('namespace mode with --log-format json: every line the agent prints is one JSON object', async (t) => {
  const r = await makeRoot(t, await makePki(t));
  const a = startAgent(t, r, ['--log-format', 'json']);
  await a.waitFor(/boot done/);
  await a.kill('SIGTERM');
  t.is(await a.exit, 0);
  const objects = jsonLines(t, a.output());
  for (const o of objects) {
    t.is(o.source, 'milkyway-agent');
    t.true(['info', 'warn', 'error'].includes(String(o.level)), JSON.stringify(o));
    t.false(Number.isNaN(Date.parse(String(o.time))), JSON.stringify(o));
  }
  t.true(objects.some((o) => /^starting \(namespace mode/.test(String(o.msg))));
  t.true(objects.some((o) => /^shutdown done/.test(String(o.msg))));
});

test('the config file logFormat json gives JSON lines; --log-format text overrides it', async (t) => {
  const r = await makeRoot(t, await makePki(t), { config: { logFormat: 'json' } });
  const a = startAgent(t, r);
  await a.waitFor(/boot done/);
  await a.kill('SIGTERM');
  t.is(await a.exit, 0);
  // The config is read after the logger starts: from then on every line is JSON.
  const after = a.output().slice(a.output().indexOf('{'));
  t.true(jsonLines(t, after).some((o) => /^starting/.test(String(o.msg))));

  const b = startAgent(t, r, ['--log-format', 'text']);
  await b.waitFor(/boot done/);
  await b.kill('SIGTERM');
  t.is(await b.exit, 0);
  t.regex(b.output(), /^\d{4}-\d\d-\d\dT[\d:.]+Z milkyway-agent info: starting \(namespace mode/m);
  t.notRegex(b.output(), /^\{/m);
});
