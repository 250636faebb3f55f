// Starts switchboard processes (gateway, standalone) for a test, waits for readiness, stops them.
export {};
