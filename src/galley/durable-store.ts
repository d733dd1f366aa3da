// The durable local config store, the embedded default behind `mesh apply`:
// a MemoryStore whose every write first commits to a SQLite file (node:sqlite,
// WAL, synchronous=FULL), so an acknowledged write survives kill -9 and power
// loss, and a crash mid-write leaves either the old or the new state, never a mix.

import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { StatementSync } from 'node:sqlite';
import type { ConfigObject } from '../api/index.ts';
import { GalleyError, GalleyErrorCode } from './errors.ts';
import { MemoryStore } from './memory-store.ts';
import { storeKey } from './object-stamp.ts';

/** The database file inside the store's directory. */
export const DURABLE_DB_FILE = 'config.db';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY,
    json TEXT NOT NULL,
    revision INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) STRICT;
  INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0);
`;

type Change = { op: 'put' | 'delete'; key: string; object: ConfigObject; revision: number };

/**
 * A ConfigStore kept in `<dir>/config.db`.
 *
 * Contract (beyond ConfigStore's): when apply/delete resolves, the change and
 * its revision are committed in one fsynced transaction; reopening the
 * directory restores every object and the revision. The directory is created
 * 0700 and the database 0600, since config may hold secrets. A damaged or
 * unreadable database fails open() with MESH_ERR_GALLEY_STORAGE naming the
 * file. One process owns a directory at a time: a write that finds the file
 * changed behind its back fails with MESH_ERR_GALLEY_STORAGE rather than
 * diverging from it.
 */
export class DurableStore extends MemoryStore {
  override readonly name: string = 'durable';
  /** The database file. */
  readonly path: string;
  private readonly db: DatabaseSync;
  private readonly putStmt: StatementSync;
  private readonly deleteStmt: StatementSync;
  private readonly readRevisionStmt: StatementSync;
  private readonly writeRevisionStmt: StatementSync;

  private constructor(db: DatabaseSync, path: string) {
    super();
    this.db = db;
    this.path = path;
    this.putStmt = db.prepare('INSERT INTO objects (key, json, revision) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET json = excluded.json, revision = excluded.revision');
    this.deleteStmt = db.prepare('DELETE FROM objects WHERE key = ?');
    this.readRevisionStmt = db.prepare("SELECT value FROM meta WHERE name = 'revision'");
    this.writeRevisionStmt = db.prepare("UPDATE meta SET value = ? WHERE name = 'revision'");
  }

  /** Opens (creating when missing) the store in `dir` and loads it into memory. */
  static async open(dir: string): Promise<DurableStore> {
    const path = join(dir, DURABLE_DB_FILE);
    let db: DatabaseSync | undefined;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      // Create the file ourselves so it never exists, even briefly, with umask's mode.
      closeSync(openSync(path, 'a', 0o600));
      chmodSync(path, 0o600);
      db = new DatabaseSync(path, { timeout: 5000 });
      db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;');
      db.exec(SCHEMA);
      const store = new DurableStore(db, path);
      store.load();
      return store;
    } catch (err) {
      if (db?.isOpen) db.close();
      if (err instanceof GalleyError) throw err;
      throw storageError(path, 'cannot open the config store', err);
    }
  }

  private load(): void {
    const revision = Number((this.readRevisionStmt.get() as { value: number | bigint }).value);
    for (const row of this.db.prepare('SELECT key, json, revision FROM objects').iterate() as Iterable<{ key: string; json: string; revision: number }>) {
      const object = parseStored(this.path, row.key, row.json);
      if (row.revision > revision) {
        throw storageError(this.path, `object ${row.key} has revision ${row.revision}, beyond the store's revision ${revision}`);
      }
      this.objects.set(row.key, object);
    }
    this.currentRevision = revision;
  }

  // The base class calls this with writes serialized, before it changes memory:
  // if the commit fails, the write fails and memory stays as it was.
  protected override async persist(change: Change): Promise<void> {
    if (!this.db.isOpen) throw new GalleyError(GalleyErrorCode.CLOSED, `the ${this.name} store is closed`);
    try {
      this.db.exec('BEGIN IMMEDIATE');
      const stored = Number((this.readRevisionStmt.get() as { value: number | bigint }).value);
      if (stored !== change.revision - 1) {
        throw storageError(this.path, `the file is at revision ${stored} but this process expected ${change.revision - 1}: another process wrote to it; reopen the store`);
      }
      if (change.op === 'put') this.putStmt.run(change.key, JSON.stringify(change.object), change.revision);
      else this.deleteStmt.run(change.key);
      this.writeRevisionStmt.run(change.revision);
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      if (err instanceof GalleyError) throw err;
      throw storageError(this.path, `cannot write ${change.key}`, err);
    }
  }

  override async close(): Promise<void> {
    await super.close();
    if (this.db.isOpen) this.db.close();
  }
}

function parseStored(path: string, key: string, json: string): ConfigObject {
  let object: ConfigObject;
  try {
    object = JSON.parse(json) as ConfigObject;
  } catch (err) {
    throw storageError(path, `object ${key} is not valid JSON`, err);
  }
  const ok = object !== null && typeof object === 'object' && typeof object.apiVersion === 'string' && typeof object.kind === 'string' && typeof object.metadata?.name === 'string';
  if (!ok || storeKey(object) !== key) throw storageError(path, `object ${key} is damaged`);
  return object;
}

function storageError(path: string, what: string, cause?: unknown): GalleyError {
  const reason = cause instanceof Error ? `: ${cause.message}` : '';
  return new GalleyError(GalleyErrorCode.STORAGE, `${path}: ${what}${reason}`, { cause });
}
