/** @coldtrace/gateway — see README.md. */
export {};
