// Types for cluster-key-slot (the CRC16 slot of a Redis Cluster key, hash tags included), which ships none.
declare module 'cluster-key-slot' {
  /** The slot (0..16383) of a key or pub/sub channel. */
  function calculateSlot(key: string | Buffer): number;
  export = calculateSlot;
}
