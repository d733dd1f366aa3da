// Istio's Mutual TLS Migration task end to end, without capture: every app gets <SVC>_SERVICE_HOST/PORT.
// The tests themselves are in mtls-tasks.ts, shared by both modes.

import { mtlsTasks } from './mtls-tasks.ts';

mtlsTasks('no-capture');
