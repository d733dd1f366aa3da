// A batch job that asks Mixer before it spends CPU ("policy uniformity":
// services call Mixer's Check / Quota / Report directly, with the same
// policies as the sidecars). Before its work it asks the `cpu-seconds`
// quota for the CPU-seconds it expects to use; it runs only if Mixer grants
// them, then reports the CPU-seconds it really used.
//
//   node samples/quota-job/job.ts --name nightly-report --cpu-seconds 3 [--mixer 127.0.0.1:9091] [--rounds 200000]
//
// Exit codes: 0 done; 75 quota refused (EX_TEMPFAIL: try again later);
// 2 bad arguments; 1 Mixer unreachable or another failure.

import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { MixerClient } from '../../src/mixer/index.ts';

const EXIT_DONE = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_QUOTA_REFUSED = 75;

/** The quota instance of mixer-config.yaml. */
const QUOTA = 'cpu-seconds';
const USAGE = 'usage: job.ts --name NAME --cpu-seconds N [--mixer HOST:PORT] [--rounds N]';

interface JobArgs {
  readonly name: string;
  /** Whole CPU-seconds asked of the quota (memquota counts integers). */
  readonly cpuSeconds: number;
  readonly mixer: string;
  readonly rounds: number;
}

class UsageError extends Error {}

function jobArgs(argv: readonly string[]): JobArgs {
  let values;
  try {
    ({ values } = parseArgs({ args: [...argv], options: { name: { type: 'string' }, 'cpu-seconds': { type: 'string' }, mixer: { type: 'string' }, rounds: { type: 'string' } } }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const name = values.name ?? '';
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)) throw new UsageError(`--name: "${name}" must be a lowercase name of letters, digits and "-"`);
  const cpuSeconds = Number(values['cpu-seconds']);
  if (!Number.isInteger(cpuSeconds) || cpuSeconds < 1) throw new UsageError(`--cpu-seconds: "${values['cpu-seconds'] ?? ''}" must be a whole number of CPU-seconds, at least 1`);
  const rounds = Number(values.rounds ?? 200_000);
  if (!Number.isInteger(rounds) || rounds < 1) throw new UsageError(`--rounds: "${values.rounds}" must be a positive whole number`);
  const mixer = values.mixer ?? process.env.MIXER_ADDRESS ?? '127.0.0.1:9091';
  if (!/^[^:\s]+:\d+$/.test(mixer)) throw new UsageError(`--mixer: "${mixer}" must be HOST:PORT`);
  return { name, cpuSeconds, mixer, rounds };
}

/** The job's real work: a SHA-256 chain, CPU-bound and the same on every run. */
function work(rounds: number): string {
  let digest = Buffer.alloc(32);
  for (let i = 0; i < rounds; i++) digest = createHash('sha256').update(digest).digest();
  return digest.toString('hex');
}

/** CPU-seconds (user + system) this process spent in `fn`. */
function cpuSecondsOf<T>(fn: () => T): { result: T; cpuSeconds: number } {
  const before = process.cpuUsage();
  const result = fn();
  const used = process.cpuUsage(before);
  return { result, cpuSeconds: (used.user + used.system) / 1e6 };
}

async function main(argv: readonly string[]): Promise<number> {
  let args: JobArgs;
  try {
    args = jobArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`quota-job: ${err.message}\n${USAGE}`);
    return EXIT_USAGE;
  }
  const mixer = new MixerClient({ address: args.mixer, deadlineMs: 5_000 });
  try {
    const attributes = { 'job.name': args.name };
    if (!(await mixer.quota(QUOTA, attributes, args.cpuSeconds))) {
      console.error(`quota-job: quota refused: job "${args.name}" asked for ${args.cpuSeconds} CPU-seconds of quota "${QUOTA}" and Mixer refused; its allotment for this window is used up, try again later`);
      return EXIT_QUOTA_REFUSED;
    }
    console.log(`quota-job: granted ${args.cpuSeconds} CPU-seconds to job "${args.name}"; working`);
    const { result, cpuSeconds } = cpuSecondsOf(() => work(args.rounds));
    await mixer.report({ ...attributes, 'job.cpu_seconds': cpuSeconds });
    // flush() rather than close() alone: a lost report must fail the job, not vanish.
    await mixer.flush();
    console.log(`quota-job: done: job "${args.name}" used ${cpuSeconds.toFixed(3)} CPU-seconds (digest ${result.slice(0, 16)}), reported to Mixer`);
    return EXIT_DONE;
  } catch (err) {
    console.error(`quota-job: failed: ${(err as Error).message}`);
    return EXIT_FAILED;
  } finally {
    await mixer.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
