/**
 * Node-RED settings for running the Coldtrace flows standalone:
 *
 *   npx node-red --settings flows/settings.cjs --userDir /var/lib/coldtrace/node-red
 *
 * Everything that differs between installations comes from the environment (flows/README.md);
 * nothing secret is written here or in the flow files. The Coldtrace nodes are loaded from this
 * folder (nodesDir), so no `npm install` into the user directory is needed.
 */
const path = require("node:path");

const env = (name, fallback) => process.env[name] ?? fallback;

if (!process.env.COLDTRACE_NODE_RED_CREDENTIAL_SECRET) {
  // Without it Node-RED would invent a key and store it beside the credentials it protects.
  throw new Error(
    "COLDTRACE_NODE_RED_CREDENTIAL_SECRET is not set: it encrypts flows_cred.json (the MQTT accounts)",
  );
}

module.exports = {
  uiHost: env("COLDTRACE_NODE_RED_HOST", "127.0.0.1"),
  uiPort: Number(env("COLDTRACE_NODE_RED_PORT", "1880")),
  flowFile: env("COLDTRACE_NODE_RED_FLOW_FILE", "flows.json"),
  // Encrypts flows_cred.json (the MQTT account of the broker nodes).
  credentialSecret: process.env.COLDTRACE_NODE_RED_CREDENTIAL_SECRET,
  nodesDir: [path.resolve(__dirname)],
  httpAdminRoot: env("COLDTRACE_NODE_RED_ADMIN_ROOT", "/admin"),
  httpNodeRoot: "/",
  // The editor and admin API: a bcrypt hash (`npx node-red admin hash-pw`) in the environment.
  adminAuth: process.env.COLDTRACE_NODE_RED_ADMIN_PASSWORD_HASH
    ? {
        type: "credentials",
        users: [
          {
            username: env("COLDTRACE_NODE_RED_ADMIN_USER", "admin"),
            password: process.env.COLDTRACE_NODE_RED_ADMIN_PASSWORD_HASH,
            permissions: "*",
          },
        ],
      }
    : undefined,
  logging: { console: { level: env("COLDTRACE_NODE_RED_LOG_LEVEL", "info"), metrics: false, audit: false } },
  // No network calls of Node-RED's own (update checks), and no palette installs from the editor.
  telemetry: { enabled: false, updateNotification: false },
  externalModules: { autoInstall: false, palette: { allowInstall: false }, modules: { allowInstall: false } },
  editorTheme: { projects: { enabled: false }, tours: false },
  functionExternalModules: false,
};
