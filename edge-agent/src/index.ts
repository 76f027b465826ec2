/** @coldtrace/edge-agent — see README.md. */
export {};
