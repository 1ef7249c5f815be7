// `mway jobs` and `mway job ID`: jobs the broker holds; `job` re-verifies every result.
import { defineCommand } from 'citty';
import { commonArgs, output } from '../../../common/index.ts';
import { finish, withClient } from './shared.ts';

export const jobs = defineCommand({
  meta: { name: 'jobs', description: 'List recent jobs' },
  args: { ...commonArgs, limit: { type: 'string', description: 'How many (default 50)' } },
  run: ({ args }) =>
    withClient(async (c) => {
      const list = (await c.jobs(args.limit === undefined ? 50 : Number(args.limit))) as Array<
        Record<string, unknown>
      >;
      output(args.json, list, () =>
        list.length === 0
          ? 'no jobs'
          : list
              .map((j) =>
                [j.jobId, j.action ?? '', j.created ?? '', JSON.stringify(j.counts ?? j.summary ?? '')].join(
                  '  ',
                ),
              )
              .join('\n'),
      );
      return 0;
    }),
});

export const job = defineCommand({
  meta: { name: 'job', description: 'Show one job with every peer result verified' },
  args: { ...commonArgs, id: { type: 'positional', required: true, description: 'Job id' } },
  run: ({ args }) => withClient(async (c) => finish(await c.job(args.id), args.json)),
});
