// A read-only config store fed by a directory of YAML/JSON files, watched so
// edits take effect without a restart. Bad files are reported and skipped
// object by object; a file that stops parsing keeps serving its last good
// objects, so a half-saved edit never takes config away.

import { watch } from 'node:fs';
import type { Dirent, FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { ConfigObject, KindRegistry, ObjectKey, ValidationResult } from '../api/index.ts';
import { describeObject, formatDiagnostic, hasErrors, validateText } from '../api/index.ts';
import type { ApplyResult, ConfigStore, ListFilter, WatchEvent } from './config-store.ts';
import { GalleyError, GalleyErrorCode } from './errors.ts';
import { matchesFilter } from './memory-store.ts';
import { sameContent, stamp, storeKey } from './object-stamp.ts';

const CONFIG_FILE = /\.(ya?ml|json)$/i;
const DEFAULT_DEBOUNCE_MS = 50;

export interface DirectorySourceOptions {
  readonly dir: string;
  readonly registry: KindRegistry;
  /** Namespace for objects that name none. Default `default`. */
  readonly defaultNamespace?: string;
  /** Receives one line per problem found (bad files, duplicate objects, watch failures). */
  readonly log?: (line: string) => void;
  /** How long to wait for a burst of file events to settle before re-reading. */
  readonly debounceMs?: number;
}

/** The problems of one file, as formatted diagnostics. */
export interface DirectoryFileStatus {
  /** The file's path: the directory as given, joined with the path inside it. */
  readonly file: string;
  readonly errors: readonly string[];
}

export interface DirectorySourceStatus {
  /** Config files found. */
  readonly files: number;
  /** Objects served. */
  readonly objects: number;
  /** Files with problems, in path order. Empty when every file is good. */
  readonly errors: readonly DirectoryFileStatus[];
}

interface FileState {
  /** The text last read; undefined when the file could not be read. */
  text: string | undefined;
  /** The last good objects of the file, in document order. */
  objects: ConfigObject[];
  /** Problems found in the file's current text. */
  errors: string[];
}

/**
 * A ConfigStore over the files of a directory (recursively; hidden files and
 * directories are passed over).
 *
 * Contract: every valid Istio object of every *.yaml, *.yml and *.json file is
 * served, stamped as other stores stamp them; invalid objects are skipped one
 * by one and reported through log() and status(); a file whose YAML does not
 * parse keeps serving what it served before; Kubernetes kinds are passed over
 * silently. An object defined in two files is served from the first by path
 * order, and the other file gets an error naming both. File changes are
 * picked up by watching the directory, debounced, and reach watchers as one
 * batch per re-read with a revision per event. apply and delete reject with
 * MESH_ERR_GALLEY_READ_ONLY.
 */
export class DirectorySource implements ConfigStore {
  readonly name: string = 'directory';
  readonly dir: string;
  private readonly registry: KindRegistry;
  private readonly defaultNamespace: string | undefined;
  private readonly log: (line: string) => void;
  private readonly debounceMs: number;
  /** By path inside the directory. */
  private readonly files = new Map<string, FileState>();
  /** By store key: the object served and the file it came from. */
  private readonly served = new Map<string, { object: ConfigObject; file: string }>();
  private duplicateErrors = new Map<string, string[]>();
  private readonly listeners = new Set<(events: readonly WatchEvent[]) => void>();
  private currentRevision = 0;
  /** One per directory, by path inside the directory ('' for itself). */
  private readonly watchers = new Map<string, FSWatcher>();
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescanWanted = false;
  private closed = false;

  private constructor(options: DirectorySourceOptions) {
    this.dir = options.dir;
    this.registry = options.registry;
    this.defaultNamespace = options.defaultNamespace;
    this.log = options.log ?? (() => {});
    this.debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  }

  /** Loads the directory and starts watching it. Fails with MESH_ERR_GALLEY_STORAGE when it is not a readable directory. */
  static async open(options: DirectorySourceOptions): Promise<DirectorySource> {
    const source = new DirectorySource(options);
    const info = await stat(options.dir).catch((err: Error) => {
      throw new GalleyError(GalleyErrorCode.STORAGE, `config directory ${options.dir}: ${err.message}`, { cause: err });
    });
    if (!info.isDirectory()) throw new GalleyError(GalleyErrorCode.STORAGE, `config directory ${options.dir}: not a directory`);
    // Watch before the first read, so a change made during it is not missed.
    source.watchDirectory('');
    try {
      await source.rescan();
    } catch (err) {
      await source.close();
      throw err;
    }
    return source;
  }

  async get(key: ObjectKey): Promise<ConfigObject | undefined> {
    const entry = this.served.get(storeKey(key));
    return entry && structuredClone(entry.object);
  }

  async list(filter?: ListFilter): Promise<ConfigObject[]> {
    const out: ConfigObject[] = [];
    for (const { object } of this.served.values()) if (matchesFilter(object, filter)) out.push(structuredClone(object));
    return out;
  }

  async apply(object: ConfigObject): Promise<ApplyResult> {
    throw this.readOnly(`cannot apply ${describeObject(object)}`);
  }

  async delete(key: ObjectKey): Promise<ConfigObject | undefined> {
    throw this.readOnly(`cannot delete ${key.kind} ${key.namespace ? `${key.namespace}/` : ''}${key.name}`);
  }

  watch(listener: (events: readonly WatchEvent[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  revision(): number {
    return this.currentRevision;
  }

  status(): DirectorySourceStatus {
    const errors: DirectoryFileStatus[] = [];
    for (const path of [...this.files.keys()].sort(byPath)) {
      const all = [...this.files.get(path)!.errors, ...(this.duplicateErrors.get(path) ?? [])];
      if (all.length > 0) errors.push({ file: this.display(path), errors: all });
    }
    return { files: this.files.size, objects: this.served.size, errors };
  }

  /**
   * Re-reads the directory now and serves what changed. Runs one at a time;
   * a call during a re-read makes one more re-read after it.
   */
  rescan(): Promise<void> {
    if (this.scanning) {
      this.rescanWanted = true;
      return this.scanning;
    }
    const run = async (): Promise<void> => {
      do {
        this.rescanWanted = false;
        await this.scanOnce();
      } while (this.rescanWanted && !this.closed);
    };
    this.scanning = run().finally(() => (this.scanning = undefined));
    return this.scanning;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
    clearTimeout(this.timer);
    this.listeners.clear();
    await this.scanning?.catch(() => undefined);
  }

  // One plain watch per directory rather than fs.watch's recursive mode: on
  // Linux that one watches each file's inode and so goes deaf to a file once
  // it is replaced by a rename, which is how editors and ConfigMaps save.
  private watchDirectory(path: string): void {
    if (this.watchers.has(path)) return;
    const watcher = watch(join(this.dir, path), () => this.scheduleRescan());
    watcher.on('error', (err) => {
      // A removed subdirectory ends its watch; the next re-read drops it anyway.
      if (path === '') this.log(`config directory ${this.dir}: watching failed: ${err.message}`);
      watcher.close();
      if (this.watchers.get(path) === watcher) this.watchers.delete(path);
    });
    this.watchers.set(path, watcher);
  }

  /** Watches exactly the directories found by the last listing. */
  private syncWatchers(directories: readonly string[]): void {
    const wanted = new Set(['', ...directories]);
    for (const [path, watcher] of this.watchers) {
      if (wanted.has(path)) continue;
      watcher.close();
      this.watchers.delete(path);
    }
    for (const path of wanted) {
      try {
        this.watchDirectory(path);
      } catch (err) {
        // Gone since listed: its parent's watch reports the removal.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }

  private scheduleRescan(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.rescan().catch((err: Error) => this.log(`config directory ${this.dir}: ${err.message}`));
    }, this.debounceMs);
  }

  private async scanOnce(): Promise<void> {
    const { files: paths, directories } = await this.listDirectory();
    if (this.closed) return;
    this.syncWatchers(directories);
    const seen = new Set<string>();
    for (const path of paths) {
      let text: string;
      try {
        text = await readFile(join(this.dir, path), 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed since listed
        const previous = this.files.get(path);
        const errors = [`error: ${this.display(path)}: cannot read: ${(err as Error).message}`];
        this.files.set(path, { text: undefined, objects: previous?.objects ?? [], errors });
        this.report(errors);
        seen.add(path);
        continue;
      }
      seen.add(path);
      const previous = this.files.get(path);
      if (previous?.text === text) continue;
      this.files.set(path, this.readFileState(path, text, previous));
    }
    for (const path of this.files.keys()) if (!seen.has(path)) this.files.delete(path);
    if (this.closed) return;
    this.serve();
  }

  /** Every config file (sorted) and subdirectory under the directory, as paths inside it. */
  private async listDirectory(): Promise<{ files: string[]; directories: string[] }> {
    let entries: Dirent[];
    try {
      entries = await readdir(this.dir, { recursive: true, withFileTypes: true });
    } catch (err) {
      throw new GalleyError(GalleyErrorCode.STORAGE, `config directory ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
    const files: string[] = [];
    const directories: string[] = [];
    for (const entry of entries) {
      const path = relative(this.dir, join(entry.parentPath, entry.name));
      if (path.split(sep).some((part) => part.startsWith('.'))) continue;
      if (entry.isDirectory()) directories.push(path);
      else if (CONFIG_FILE.test(path)) {
        // stat follows symbolic links, as in a mounted Kubernetes ConfigMap.
        const info = await stat(join(this.dir, path)).catch(() => undefined);
        if (info?.isFile()) files.push(path);
      }
    }
    return { files: files.sort(byPath), directories };
  }

  private readFileState(path: string, text: string, previous: FileState | undefined): FileState {
    const file = this.display(path);
    let results: ValidationResult[];
    try {
      results = validateText(text, this.registry, { file, defaultNamespace: this.defaultNamespace });
    } catch (err) {
      // The parser refuses some texts by throwing (such as alias bombs): treat them as a syntax error.
      const errors = [`error: ${file}: cannot read the file: ${(err as Error).message}; ${previous?.objects.length ? 'still serving its last good objects' : 'nothing from it is served'}`];
      this.report(errors);
      return { text, objects: previous?.objects ?? [], errors };
    }
    const errors: string[] = [];
    const objects: ConfigObject[] = [];
    let syntaxError = false;
    for (const result of results) {
      if (result.ignored !== undefined) continue;
      if (result.kind === undefined && result.object.kind === 'Document' && result.diagnostics.some((d) => d.message.startsWith('YAML syntax error'))) syntaxError = true;
      errors.push(...formatted(result, 'error'));
      for (const warning of formatted(result, 'warning')) this.log(warning);
      if (!hasErrors(result)) objects.push(result.object);
    }
    if (syntaxError) {
      const kept = previous?.objects ?? [];
      errors.push(`error: ${file}: the file does not parse; ${kept.length > 0 ? `still serving its last good ${kept.length} object(s)` : 'nothing from it is served'}`);
      this.report(errors);
      return { text, objects: kept, errors };
    }
    this.report(errors);
    return { text, objects, errors };
  }

  /** Works out what to serve from the files' objects and tells watchers what changed. */
  private serve(): void {
    const wanted = new Map<string, { object: ConfigObject; file: string }>();
    const duplicates = new Map<string, string[]>();
    for (const path of [...this.files.keys()].sort(byPath)) {
      for (const object of this.files.get(path)!.objects) {
        const key = storeKey(object);
        const first = wanted.get(key);
        if (first) {
          const message = `error: ${describeObject(object)} is defined in both ${this.display(first.file)} and ${this.display(path)}; serving the one in ${this.display(first.file)}`;
          duplicates.set(path, [...(duplicates.get(path) ?? []), message]);
          continue;
        }
        wanted.set(key, { object, file: path });
      }
    }
    for (const [path, messages] of duplicates) {
      const before = this.duplicateErrors.get(path) ?? [];
      this.report(messages.filter((m) => !before.includes(m)));
    }
    this.duplicateErrors = duplicates;

    const events: WatchEvent[] = [];
    for (const [key, entry] of this.served) {
      if (wanted.has(key)) continue;
      this.served.delete(key);
      events.push({ type: 'DELETED', object: structuredClone(entry.object), revision: ++this.currentRevision });
    }
    for (const [key, { object, file }] of wanted) {
      const current = this.served.get(key);
      if (current && sameContent(current.object, object)) {
        current.file = file;
        continue;
      }
      const stamped = stamp(object, current?.object, this.currentRevision + 1);
      this.currentRevision += 1;
      this.served.set(key, { object: stamped, file });
      events.push({ type: current ? 'MODIFIED' : 'ADDED', object: structuredClone(stamped), revision: this.currentRevision });
    }
    if (events.length > 0) for (const listener of this.listeners) listener(events);
  }

  private report(lines: readonly string[]): void {
    for (const line of lines) this.log(line);
  }

  private display(path: string): string {
    return join(this.dir, path);
  }

  private readOnly(what: string): GalleyError {
    if (this.closed) return new GalleyError(GalleyErrorCode.CLOSED, `the directory source ${this.dir} is closed`);
    return new GalleyError(GalleyErrorCode.READ_ONLY, `${what}: config is read from the directory ${this.dir}, which is read-only here; edit the files in it instead`);
  }
}

function formatted(result: ValidationResult, severity: 'error' | 'warning'): string[] {
  return result.diagnostics.filter((d) => d.severity === severity).map((d) => formatDiagnostic(result, d));
}

// Plain code-unit order, the same on every machine and locale.
function byPath(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
