/**
 * What remote configuration remembers across restarts, in `{dataDir}/remote-config.json`:
 * the pushed configuration the agent runs, the last good one to roll back to, a configuration
 * on trial (a restart during the trial rolls it back), the highest desired version handled
 * (a retained desired message is never applied twice), and the hash of the box's own file
 * when the pushed configuration was applied (a technician's edit of the file wins).
 *
 * Written atomically: a temporary file, fsync, rename, fsync of the folder (a power cut leaves
 * the old state or the new, never half of one). Pushed documents hold no secrets.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { ColdtraceError } from "@coldtrace/protocol";

/** A configuration the agent can run: its own file, or a pushed document. */
export interface Running {
  source: "file" | "remote";
  /** The pushed version; null for the file. */
  version: number | null;
  documentHash: string;
  /** The pushed document (schema output); absent for the file, which is read from disk. */
  document?: unknown;
}

export interface RemoteState {
  /** What the agent runs when it starts, unless the file changed or a trial was interrupted. */
  current?: Running;
  /** What a failed trial goes back to. */
  lastGood?: Running;
  trial?: Running & { startedAt: number };
  /** Highest desired version applied, refused or rolled back. */
  lastHandledVersion: number;
  /** documentHash of the box's file when `current` was applied. */
  fileHash?: string;
}

export function stateFile(dataDir: string): string {
  return join(dataDir, "remote-config.json");
}

export function loadRemoteState(file: string): RemoteState {
  try {
    const state = JSON.parse(readFileSync(file, "utf8")) as RemoteState;
    return { ...state, lastHandledVersion: Number(state.lastHandledVersion) || 0 };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { lastHandledVersion: 0 };
    throw new ColdtraceError(
      "CT_CFG_UNREADABLE",
      `${file}: remote configuration state unreadable (${(err as Error).message}); delete it to start from the file`,
      { file },
      { cause: err },
    );
  }
}

export function saveRemoteState(file: string, state: RemoteState): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, "w", 0o640);
  try {
    writeSync(fd, `${JSON.stringify(state, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  const dir = openSync(dirname(file), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
