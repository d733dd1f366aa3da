// Istio's Request Routing, Traffic Shifting and Mirroring tasks end to end, without capture: every app gets <SVC>_SERVICE_HOST/PORT.
// The tests themselves are in routing-tasks.ts, shared by both modes.

import { routingTasks } from './routing-tasks.ts';

routingTasks('no-capture');
