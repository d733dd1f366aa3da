// Time for the registry's heartbeat timers (src/common/clock.ts). Timers are
// unref'd: a heartbeat deadline alone must not keep a process alive.
export type { Clock as RegistryClock } from '../../common/index.ts';
export { backgroundClock as systemRegistryClock } from '../../common/index.ts';
