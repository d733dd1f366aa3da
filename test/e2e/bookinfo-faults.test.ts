// Istio's Fault Injection and Request Timeouts tasks end to end, without capture: every app gets <SVC>_SERVICE_HOST/PORT.
// The tests themselves are in faults-tasks.ts, shared by both modes.

import { faultTasks } from './faults-tasks.ts';

faultTasks('no-capture');
