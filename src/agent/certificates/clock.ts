// Time for certificate rotation (src/common/clock.ts), with unref'd timers: a
// pending renewal never keeps a process alive.
export type { Clock as AgentClock } from '../../common/index.ts';
export { backgroundClock as systemAgentClock } from '../../common/index.ts';
