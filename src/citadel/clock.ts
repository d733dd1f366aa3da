// Time as the CA sees it (validity windows, token expiry, serving-cert
// renewal); src/common/clock.ts, with unref'd timers.
export type { Clock as CitadelClock } from '../common/index.ts';
export { backgroundClock as systemCitadelClock } from '../common/index.ts';
