// `mway peers --wait N` waits for peers that are online AND have sent their signed status: a
// peer gathers its status after its session is up (seconds later on a slow machine), and a
// script's next `mway facts` must not show it as `none` (how-to-enroll-with-cloud-init's guest
// did, under load in CI). The broker, the peer link and `mway` are real (127.0.0.1); the
// agent is a recording AgentApi whose status answer is held back.
import test from 'ava';
import { makeFleetPki } from '../control/command-fixture.ts';
import { recorder } from '../agent/remote/recording-agent.ts';
import { startFleet } from './_fleet.ts';

const pkiP = makeFleetPki();

test('peers --wait returns only once the online peer has reported its status; facts then shows it verified', async (t) => {
  const p = await pkiP;
  const f = await startFleet(t, p);
  const rec = recorder();
  let release: () => void = () => {};
  const held = new Promise<void>((r) => {
    release = r;
  });
  t.teardown(() => release()); // a failing run must not leave the link waiting
  const slow = rec.api.status;
  const api = {
    ...rec.api,
    status: async () => {
      await held;
      return slow();
    },
  };
  await f.start(p.p1, { api }); // resolves once the broker has the session (online)
  const admin = await f.as(p.admin, 'admin');

  // Online without a status: --wait keeps waiting, and times out with its code.
  const short = await admin('peers', '--wait', '1', '--timeout', '2');
  t.is(short.exitCode, 1, short.stdout + short.stderr);
  t.regex(short.stderr, /E_TIMEOUT/);
  t.regex((await admin('facts')).stdout, /^p1\s+none/m);

  const waiting = admin('peers', '--wait', '1', '--timeout', '30');
  setTimeout(release, 1500);
  const w = await waiting;
  t.is(w.exitCode, 0, w.stdout + w.stderr);
  t.regex(w.stdout, /^p1\s+online/m);
  const facts = await admin('facts');
  t.is(facts.exitCode, 0, facts.stderr);
  t.notRegex(facts.stdout, /none/);
  t.regex(facts.stdout, /^p1\s/m);
});
