// Verifies connection and subscription JWTs (HS256 with a shared secret, RS256/ES256 with public keys).
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { errors, jwtVerify, type JWTHeaderParameters, type JWTPayload } from 'jose';
import type { Json } from '@switchboard/protocol';
import type { AuthOptions } from './options';

export interface ConnectClaims {
  user: string;
  /** Unix seconds, or 0 when the token does not expire. */
  exp: number;
  info?: Json;
  channels: string[];
}

export interface SubscribeClaims {
  user: string;
  channel: string;
  exp: number;
  info?: Json;
}

/** Why a token was refused: expired tokens can be refreshed, invalid ones cannot. */
export class TokenError extends Error {
  constructor(
    readonly expired: boolean,
    message: string,
  ) {
    super(message);
  }
}

type Key = Uint8Array | KeyObject;

export class TokenVerifier {
  private readonly keys = new Map<string, Key>();

  constructor(options: AuthOptions) {
    // A KeyObject made once: given bytes, jose would make one per verification (a quarter of its cost).
    if (options.hmacSecret) this.keys.set('HS256', createSecretKey(Buffer.from(options.hmacSecret, 'utf8')));
    for (const pem of options.publicKeys ?? []) {
      const key = createPublicKey(pem);
      if (key.asymmetricKeyType === 'rsa') this.keys.set('RS256', key);
      else if (key.asymmetricKeyType === 'ec') this.keys.set('ES256', key);
      else throw new Error(`unsupported public key type ${key.asymmetricKeyType}: use an RSA or EC P-256 key`);
    }
  }

  /** True when some key is configured, so tokens can be checked at all. */
  get enabled(): boolean {
    return this.keys.size > 0;
  }

  async verifyConnect(token: string): Promise<ConnectClaims> {
    const payload = await this.verify(token);
    const channels = payload.channels;
    if (channels !== undefined && !(Array.isArray(channels) && channels.every((c) => typeof c === 'string'))) {
      throw new TokenError(false, 'claim "channels" must be an array of strings');
    }
    return {
      user: claimString(payload, 'sub'),
      exp: payload.exp ?? 0,
      info: payload.info as Json | undefined,
      channels: (channels as string[] | undefined) ?? [],
    };
  }

  async verifySubscribe(token: string): Promise<SubscribeClaims> {
    const payload = await this.verify(token);
    const channel = claimString(payload, 'channel');
    if (channel === '') throw new TokenError(false, 'claim "channel" is required in a subscription token');
    return { user: claimString(payload, 'sub'), channel, exp: payload.exp ?? 0, info: payload.info as Json | undefined };
  }

  private async verify(token: string): Promise<JWTPayload> {
    const getKey = (header: JWTHeaderParameters): Key => {
      const key = this.keys.get(header.alg);
      if (!key) throw new TokenError(false, `token algorithm ${header.alg} is not accepted by this server`);
      return key;
    };
    try {
      const { payload } = await jwtVerify(token, getKey, { algorithms: [...this.keys.keys()] });
      return payload;
    } catch (e) {
      if (e instanceof TokenError) throw e;
      if (e instanceof errors.JWTExpired) throw new TokenError(true, 'token expired');
      // Not valid yet: most often the issuer's clock runs ahead of ours. Like Centrifugo, answer "expired" so
      // the SDK fetches a fresh token and retries instead of giving up on a terminal disconnect.
      if (e instanceof errors.JWTClaimValidationFailed && e.claim === 'nbf') throw new TokenError(true, 'token not valid yet (nbf)');
      throw new TokenError(false, `invalid token: ${(e as Error).message}`);
    }
  }
}

function claimString(payload: JWTPayload, name: string): string {
  const v = payload[name];
  if (v === undefined) return '';
  if (typeof v !== 'string') throw new TokenError(false, `claim "${name}" must be a string`);
  return v;
}
