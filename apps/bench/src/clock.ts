/**
 * Timestamps shared by every bench process. `process.hrtime` reads CLOCK_MONOTONIC, which is
 * one clock for the whole machine on Linux, so a publish time taken in a server process can be
 * subtracted from a receive time taken in a load-generator process.
 */
export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export function cpuUs(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
