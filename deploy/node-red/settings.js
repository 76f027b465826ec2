// Node-RED settings of the docker-compose stack: one Node-RED per flow folder of flows/ (mounted
// read-only at /flows: edits belong in the repository), chosen by COLDTRACE_FLOW (escalation, erp-bridge). Runtime state
// (context, credentials) stays in the service's /data volume. Secrets come from the
// environment and /run/coldtrace/secrets, never from the flow files.
const flow = process.env.COLDTRACE_FLOW || "escalation";

module.exports = {
  uiPort: Number(process.env.PORT || 1880),
  flowFile: `/flows/${flow}/flows.json`,
  credentialSecret: false,
  contextStorage: { default: { module: "localfilesystem" } },
  logging: { console: { level: process.env.NODE_RED_LOG_LEVEL || "info", metrics: false, audit: false } },
  editorTheme: { projects: { enabled: false } },
  functionExternalModules: false,
  exportGlobalContextKeys: false,
};
