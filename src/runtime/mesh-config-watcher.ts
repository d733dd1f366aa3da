// Watches the control plane's MeshConfig file (`mesh control-plane
// --mesh-config FILE`), as istiod watches the `istio` ConfigMap: a change is
// read, validated, and handed on; an invalid file is logged with the fields
// at fault and the config in force stays. Editors and `kubectl`-style tools
// replace files by rename, so the directory is watched, not the file.

import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { parseMeshConfig } from '../api/index.ts';
import type { MeshConfig } from '../api/index.ts';
import type { Logger } from '../common/index.ts';

export interface MeshConfigWatcherOptions {
  readonly file: string;
  /** The config in force at start (already read from `file`). */
  readonly initial: MeshConfig;
  readonly log: Logger;
  /** Called with each new valid config that differs from the one in force. */
  readonly onChange: (mesh: MeshConfig, previous: MeshConfig) => void;
  /** Quiet period after the last file event before reading (default 100 ms). */
  readonly debounceMs?: number;
}

/** Fields read once at start by components that keep them (identities, Mixer's config root): a change needs a restart. */
const START_ONLY_FIELDS = ['trustDomain', 'trustDomainAliases', 'rootNamespace'] as const;

export class MeshConfigWatcher {
  readonly #options: MeshConfigWatcherOptions;
  #current: MeshConfig;
  #lastText: string | undefined;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reading: Promise<void> = Promise.resolve();

  constructor(options: MeshConfigWatcherOptions) {
    this.#options = options;
    this.#current = options.initial;
  }

  get current(): MeshConfig {
    return this.#current;
  }

  start(): void {
    const name = basename(this.#options.file);
    this.#watcher = watch(dirname(this.#options.file), (_event, file) => {
      if (file !== null && file !== name) return;
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => {
        this.#reading = this.#reading.then(() => this.reload());
      }, this.#options.debounceMs ?? 100);
    });
    this.#watcher.on('error', (err) => this.#options.log.warn({ file: this.#options.file, err: err.message }, 'mesh config watch failed'));
  }

  /** Reads and applies the file now (also what a file event does). */
  async reload(): Promise<void> {
    const { file, log } = this.#options;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      log.warn({ file, err: (err as Error).message }, 'mesh config unreadable; keeping the config in force');
      return;
    }
    if (text === this.#lastText) return;
    this.#lastText = text;
    let next: MeshConfig;
    try {
      next = parseMeshConfig(text);
    } catch (err) {
      // The message names each field at fault (`outboundTrafficPolicy.mode: ...`).
      log.error({ file, err: (err as Error).message }, 'mesh config rejected; keeping the config in force');
      return;
    }
    const previous = this.#current;
    if (JSON.stringify(next) === JSON.stringify(previous)) return;
    this.#current = next;
    const restart = START_ONLY_FIELDS.filter((f) => JSON.stringify(next[f]) !== JSON.stringify(previous[f]));
    if (restart.length > 0) log.warn({ file, fields: restart }, 'mesh config fields that take effect only after a restart changed');
    log.info({ file, outboundTrafficPolicy: next.outboundTrafficPolicy.mode }, 'mesh config reloaded');
    this.#options.onChange(next, previous);
  }

  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#watcher?.close();
    await this.#reading;
  }
}
