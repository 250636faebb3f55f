// Random channel epochs: short, URL-safe and without spaces (the Redis pub/sub payload is space-separated).
import { randomBytes } from 'node:crypto';

const BYTES_PER_EPOCH = 6; // 8 base64url characters
const POOL_SIZE = BYTES_PER_EPOCH * 256;

// The Redis engine makes an epoch for every publish (the script keeps it only for a new channel), so draw
// random bytes in blocks rather than one syscall per publish.
let pool = randomBytes(POOL_SIZE);
let used = 0;

export function newEpoch(): string {
  if (used + BYTES_PER_EPOCH > POOL_SIZE) {
    pool = randomBytes(POOL_SIZE);
    used = 0;
  }
  const epoch = pool.toString('base64url', used, used + BYTES_PER_EPOCH);
  used += BYTES_PER_EPOCH;
  return epoch;
}
