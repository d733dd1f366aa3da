// Istio's Fault Injection and Request Timeouts tasks end to end, in capture mode: every replica in its own network namespace,
// the apps calling each other by name (root, iproute2 and iptables; skipped
// with the reason otherwise).
// The tests themselves are in faults-tasks.ts, shared by both modes.

import { faultTasks } from './faults-tasks.ts';

faultTasks('capture');
