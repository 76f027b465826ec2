/** @coldtrace/simulators — see README.md. */
export {};
