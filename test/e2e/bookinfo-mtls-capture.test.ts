// Istio's Mutual TLS Migration task end to end, in capture mode: every replica in its own network namespace,
// the apps calling each other by name (root, iproute2 and iptables; skipped
// with the reason otherwise).
// The tests themselves are in mtls-tasks.ts, shared by both modes.

import { mtlsTasks } from './mtls-tasks.ts';

mtlsTasks('capture');
