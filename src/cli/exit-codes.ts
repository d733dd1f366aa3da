// Exit codes of `mesh`, stable so scripts can rely on them (documented in README).

export const ExitCode = {
  OK: 0,
  /** Invalid config (validate/apply) or analysis found errors. */
  INVALID: 1,
  /** Bad command line. */
  USAGE: 2,
  /** The control plane could not be reached. */
  UNREACHABLE: 3,
  /** The named object or kind does not exist. */
  NOT_FOUND: 4,
  /** resourceVersion conflict: someone else changed the object. */
  CONFLICT: 5,
  /** Anything else went wrong (server error, I/O). */
  FAILURE: 6,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** An error that ends the command with a given exit code and message. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(exitCode: number, message: string) {
    super(message);
    this.exitCode = exitCode;
  }
}
