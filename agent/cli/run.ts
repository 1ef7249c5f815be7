// `milkyway-agent [--root DIR] [--config FILE]`: the agent itself (the root command runs this
// when no subcommand is given). As a real PID 1 it mounts the API filesystems first and never
// exits; under `unshare --pid --fork --mount --mount-proc` it exits with the shutdown status.
import { defineCommand } from 'citty';
import type { AgentConfig } from '../core/agent-config.ts';
import { enableAgentCompileCache, flushAgentCompileCache } from '../core/compile-cache.ts';
import { ensureInternals } from '../core/rt-signals.ts';
import { DEFAULT_CONFIG, runArgs } from './run-args.ts';

export async function runAgent(args: {
  root?: string;
  config?: string;
  mode?: string;
  logFormat?: string;
}): Promise<number> {
  // Re-exec (for the real-time signals) before loading anything heavy: the agent's
  // modules are then compiled once, not twice.
  ensureInternals();
  // Started with the flag already (no re-exec): the heavy modules below still get the cache.
  enableAgentCompileCache();
  const { Agent } = await import('../core/agent.ts');
  const { parseAgentConfig, readAgentConfig } = await import('../core/agent-config.ts');
  const { createAgentLogger } = await import('../core/agent-log.ts');
  const { mountApiFilesystems } = await import('../core/boot-mounts.ts');
  const { finish, installEmergencyPath, installSignalHandlers, isRealPid1 } = await import('../core/pid1.ts');
  const { watchPowerButton } = await import('../core/power-button.ts');
  const { startWatchdog, watchdogDevice } = await import('../core/watchdog.ts');
  const realPid1 = args.mode === 'pid1' || ((args.mode ?? 'auto') === 'auto' && isRealPid1());
  // The flag, else MWAY_LOG_FORMAT, else (once it is read) the config file's logFormat.
  const asked = args.logFormat ?? process.env.MWAY_LOG_FORMAT;
  const logger = createAgentLogger({ kmsg: realPid1, format: asked === 'json' ? 'json' : 'text' });
  if (realPid1) await mountApiFilesystems(logger.log);
  const path = args.config ?? DEFAULT_CONFIG;
  let config: AgentConfig;
  try {
    config = await readAgentConfig(path, args.root === undefined ? {} : { root: args.root });
  } catch (e) {
    // Off PID 1 a bad config is a usage error; as PID 1 we stay up on defaults (no services
    // start without a verified secure config anyway) so the console shows why.
    if (!realPid1) throw e;
    logger.log('error', `${(e as Error).message}; continuing with the default config`);
    config = parseAgentConfig({});
  }
  if (asked === undefined) logger.setFormat(config.logFormat);
  const agent = new Agent({ config, mode: realPid1 ? 'pid1' : 'namespace', logger });
  installEmergencyPath(agent);
  installSignalHandlers(agent);
  // PID 1 must never run out of things to wait for.
  const keepAlive = setInterval(() => {}, 1 << 30);
  // Armed before the boot: a hang anywhere from here on (a trial slot's before its health
  // gate above all) resets the machine, and stage 1 has already spent that slot's try.
  const dogDevice = watchdogDevice(config.watchdog.device, realPid1, (p) => agent.path(p));
  let dog: import('../core/watchdog.ts').Watchdog | undefined;
  if (dogDevice !== null) {
    try {
      dog = startWatchdog({ device: dogDevice, feedMs: config.watchdog.feedMs, log: agent.log });
    } catch (e) {
      agent.warn(`watchdog: cannot open ${dogDevice}: ${(e as Error).message}; a hang is not caught`);
    }
  } else if (realPid1)
    agent.log('info', 'watchdog: none (no /dev/watchdog): a hang of the agent is not caught');
  if (realPid1) {
    const button = watchPowerButton(() => void agent.shutdown('poweroff', 'power button pressed'));
    agent.onShutdown('power button', async () => button.stop());
  }
  agent.log('info', `starting (${agent.mode} mode, root ${config.root}, pid ${process.pid})`);
  // Before the boot: the seed's network is up for the services, and its hostname is set
  // before the signed secure config's (which then wins).
  let seed: import('../core/nocloud-seed.ts').NocloudSeed | undefined;
  if (config.nocloud !== undefined) {
    const { provisionFromSeed } = await import('../core/nocloud-apply.ts');
    const device = config.nocloud.device;
    if (device === 'auto' && !realPid1) agent.warn('cloud-init seed: device auto needs PID 1; name a file');
    else
      seed = await provisionFromSeed({
        device: device === 'auto' ? device : agent.path(device),
        pid1: realPid1,
        log: agent.log,
        warn: (m) => agent.warn(m),
      });
  }
  // The system bus's directory exists before the boot's services start, so their sandboxes
  // (with SELinux on) bind it and see the socket the bus makes there after the boot.
  if (realPid1 && config.dbus !== undefined && config.dbus.address === undefined) {
    const { mkdir } = await import('node:fs/promises');
    const { SYSTEM_BUS_DIR } = await import('../services/sandbox.ts');
    await mkdir(SYSTEM_BUS_DIR, { recursive: true, mode: 0o755 }).catch(() => undefined);
  }
  await agent.boot();
  flushAgentCompileCache();
  if (config.dbus !== undefined) {
    try {
      if (realPid1 && config.dbus.address === undefined) {
        // Nothing else starts the system bus on MilkyWayLinux: PID 1 runs it as its child.
        const { startBusDaemon } = await import('../dbus/dbus-daemon.ts');
        const daemon = await startBusDaemon({});
        agent.onShutdown('system bus', () => daemon.stop());
      }
      const { startDbusService } = await import('../dbus/dbus-service.ts');
      const svc = await startDbusService({ api: agent, address: config.dbus.address, log: agent.log });
      agent.onShutdown('D-Bus service', () => svc.stop());
      agent.log('info', `serving org.milkyway.Agent1 on ${config.dbus.address ?? 'the system bus'}`);
    } catch (e) {
      agent.warn(`cannot serve the D-Bus API: ${(e as Error).message}`);
    }
  }
  if (config.control !== undefined) {
    try {
      const { resolveControlPaths, startPeerLink } = await import('../remote/peer-link.ts');
      // The replay cache and memberships must survive reboots: they live on the data partition.
      const link = await startPeerLink({
        api: agent,
        // Paths inside --root, like the rest of the config (identity, anchors, CRLs, enroll.dir).
        config: resolveControlPaths(config.control, (p) => agent.path(p)),
        stateDir: agent.path(config.dataDir),
        log: agent.log,
        onConnected: () => agent.noteBrokerReached(),
        ...(seed === undefined
          ? {}
          : {
              seed: {
                ...(seed.broker === undefined ? {} : { broker: seed.broker }),
                ...(seed.token === undefined ? {} : { token: seed.token }),
              },
            }),
      });
      agent.onShutdown('peer link', () => link.stop());
      agent.log('info', 'peer link started');
    } catch (e) {
      agent.warn(
        `cannot start the peer link: ${(e as { code?: string }).code ?? ''} ${(e as Error).message}`,
      );
    }
  }
  const result = await agent.done;
  clearInterval(keepAlive);
  // A poweroff must stay off: disarm. A reboot keeps it armed, unfed: if `reboot -f` never
  // happens, the watchdog does it.
  if (result.action === 'reboot') dog?.stopFeeding();
  else dog?.disarm();
  return finish(result, realPid1);
}

export default defineCommand({
  args: runArgs,
  run: ({ args }) =>
    runAgent({
      ...(args.root === undefined ? {} : { root: args.root }),
      ...(args.config === undefined ? {} : { config: args.config }),
      ...(args.mode === undefined ? {} : { mode: args.mode }),
      ...(args['log-format'] === undefined ? {} : { logFormat: args['log-format'] }),
    }),
});
