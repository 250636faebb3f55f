// Starts a private redis-server on a free port for a test, and stops it.
export {};
