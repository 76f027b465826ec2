/**
 * One lock per SQLite database. node:sqlite has one connection per `DatabaseSync`, and a
 * transaction that awaits between statements leaves it open on that connection: anything else
 * written meanwhile would join it (and maybe roll back with it). So every writer of the same
 * database — the record store, the reading store, the outbox, the modules' transactions —
 * takes this lock, in FIFO order. PostgreSQL needs none: a transaction owns a pooled client.
 */
import type { DatabaseSync } from "node:sqlite";

/** A FIFO async lock. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  lock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}

const locks = new WeakMap<DatabaseSync, Mutex>();

/** The lock of `db`: the same object for every caller of the same database handle. */
export function databaseLock(db: DatabaseSync): Mutex {
  let lock = locks.get(db);
  if (!lock) {
    lock = new Mutex();
    locks.set(db, lock);
  }
  return lock;
}
