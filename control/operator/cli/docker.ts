// `mway docker start --compose FILE [--enable]`: the seed's spelling of `mway compose up`. The
// project is installed in the same one signed rollout; then each of its services is started
// (`service.start`, in dependency order: a one-shot that had exited runs again, as `docker
// compose start` reruns it) and, with --enable, marked to start on its own at boot
// (`service.enable`), without it marked not to (`service.disable`) — systemctl's start and
// enable, as the seed's "start … and enable its auto start" reads.
import { defineCommand } from 'citty';
import type { CommandAction } from '../../wire/index.ts';
import { composeUp, composeUpArgs } from './compose.ts';
import { finish, jsonMode, targetOf } from './shared.ts';

const start = defineCommand({
  meta: {
    name: 'start',
    description: 'Install a compose project and start it (as mway compose up); --enable: also at boot',
  },
  args: {
    ...composeUpArgs,
    compose: { type: 'string', description: 'The compose file (docker-compose.yml, compose.yaml)' },
    enable: {
      type: 'boolean',
      description: 'Start its services on their own at boot too (without it: started now, not at boot)',
    },
  },
  run({ args }) {
    return composeUp(
      args.compose,
      args,
      async (c, layers) => {
        const json = jsonMode(args);
        const target = targetOf(args);
        const timeoutMs = (args.timeout === undefined ? 60 : Number(args.timeout)) * 1000;
        const boot: CommandAction = args.enable === true ? 'service.enable' : 'service.disable';
        let exit = 0;
        for (const l of layers) {
          for (const s of l.services) {
            const service = `${l.name}/${s.name}`;
            for (const action of [boot, 'service.start'] as const) {
              const r = await c.run({
                action,
                target,
                args: { service },
                timeoutMs,
                ...(args.batch === undefined ? {} : { batch: args.batch }),
                ...(args['max-fail'] === undefined ? {} : { maxFail: args['max-fail'] }),
              });
              exit = Math.max(exit, finish(r, json, true));
            }
          }
        }
        return exit;
      },
      '--compose FILE',
    );
  },
});

export default defineCommand({
  meta: { name: 'docker', description: 'The seed’s docker verbs over compose projects as layer sets' },
  subCommands: { start },
});
