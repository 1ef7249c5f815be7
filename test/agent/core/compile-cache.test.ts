// agent/core/compile-cache.ts: the re-exec's environment names the cache beside the code unless
// the caller chose or disabled one.
import test from 'ava';
import { join } from 'node:path';
import { COMPILE_CACHE_DIR, withCompileCache } from '../../../agent/core/compile-cache.ts';

test('withCompileCache() adds NODE_COMPILE_CACHE beside the code and keeps the rest', (t) => {
  const env = withCompileCache({ PATH: '/bin', UNSET: undefined });
  t.is(env.NODE_COMPILE_CACHE, COMPILE_CACHE_DIR);
  t.is(env.PATH, '/bin');
  t.false('UNSET' in env);
  t.is(
    COMPILE_CACHE_DIR,
    join(import.meta.dirname, '..', '..', '..', 'node_modules', '.cache', 'milkyway-agent'),
  );
});

test('withCompileCache() keeps a cache the caller chose', (t) => {
  t.is(withCompileCache({ NODE_COMPILE_CACHE: '/elsewhere' }).NODE_COMPILE_CACHE, '/elsewhere');
});

test('withCompileCache() adds none when the caller disabled it', (t) => {
  t.false('NODE_COMPILE_CACHE' in withCompileCache({ NODE_DISABLE_COMPILE_CACHE: '1' }));
});
