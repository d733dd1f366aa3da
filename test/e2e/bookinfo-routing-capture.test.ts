// Istio's Request Routing, Traffic Shifting and Mirroring tasks end to end, in capture mode: every replica in its own network namespace,
// the apps calling each other by name (root, iproute2 and iptables; skipped
// with the reason otherwise).
// The tests themselves are in routing-tasks.ts, shared by both modes.

import { routingTasks } from './routing-tasks.ts';

routingTasks('capture');
