/**
 * The first step of every Coldtrace command (`coldtrace-gateway`, `coldtrace-agent`,
 * `coldtrace-sim`), in plain JavaScript so that any Node can run it. The commands are
 * TypeScript that Node runs directly (type stripping, on without a flag from Node 22.18 and
 * 23.6); on an older Node they would die with ERR_UNKNOWN_FILE_EXTENSION and a stack trace.
 * This says what is needed and how to get it instead, and exits 1.
 */
export function requireTypeScriptNode(command) {
  // "strip" or "transform" when this Node runs .ts files; false or undefined (Node < 22.10) otherwise.
  if (process.features.typescript) return;
  const [major, minor] = process.versions.node.split(".").map(Number);
  const recent = major > 22 || (major === 22 && minor >= 18);
  process.stderr.write(
    `${command}: needs Node.js 22.18 or later (24 LTS recommended), which runs its TypeScript sources directly;\n` +
      (recent
        ? `this Node ${process.version} has type stripping turned off (--no-experimental-strip-types in the command line or NODE_OPTIONS).\n`
        : `this is Node ${process.version} (${process.execPath}).\n`) +
      "In the Coldtrace repository, `. scripts/ensure-node.sh` installs Node 24 into ~/.cache/coldtrace/node24\n" +
      "and puts it first on PATH for this shell (the system node is left alone); then run the command again.\n",
  );
  process.exit(1);
}
