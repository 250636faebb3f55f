// Names the Pusher edge shares between its parts on every gateway.

/** Control message kind of terminate_connections, delivered to every gateway: `{ app, user }`. */
export const TERMINATE = 'pusher.terminate';
