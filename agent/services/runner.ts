// What runs one process of a service, seen from the restart policy (service-unit.ts): start
// a run, stop it (a signal, then SIGKILL after a timeout), wait for its exit. The policy never
// knows how the process is isolated; the bubblewrap runner (sandbox-runner.ts) is the real
// one, and the policy's tests use a fake (test/agent/services/_fake-runner.ts). The split
// follows Talos's runner and restart decorator (machined/pkg/system/runner).

/** How a run ended. */
export interface RunExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** What a readiness condition adds to a run before it starts (readiness/condition.ts). */
export interface RunOptions {
  /** Host directory to bind at NOTIFY_DIR_IN_SANDBOX, with $NOTIFY_SOCKET set (sd_notify). */
  notifyDir?: string;
}

/** One started process (one attempt of a service). */
export interface Run {
  /** Host pid of the supervised process while it lives. */
  readonly pid: number | undefined;
  /** Resolves once the process is up (the sandbox exists); never rejects. */
  readonly up: Promise<void>;
  /** Host pid of the process whose namespaces a probe enters (the sandbox's PID 1). */
  readonly namespacePid: Promise<number>;
  /** Resolves with how the run ended; never rejects. */
  readonly exit: Promise<RunExit>;
  /** Limits asked for that could not be applied (`memory.max` …), known once started. */
  readonly limitsNotApplied: readonly string[];
  /**
   * Sends `signal` to the service's processes and SIGKILLs them `timeoutMs` later when they
   * are still there. Resolves with the exit and whether the kill was needed.
   */
  stop(signal: NodeJS.Signals, timeoutMs: number): Promise<{ exit: RunExit; killed: boolean }>;
  /** SIGKILLs every process of the run at once; resolves when it has exited. */
  kill(): Promise<void>;
}

/** Starts runs of one service. */
export interface Runner {
  /** Starts a run; rejects (nothing left running) when it cannot be started. */
  start(options: RunOptions): Promise<Run>;
}
