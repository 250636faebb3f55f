<?php
// HS256 connection and subscription tokens for Switchboard (and Centrifugo), with nothing but PHP's hash_hmac.

declare(strict_types=1);

namespace Switchboard;

final class Tokens
{
    public function __construct(private readonly string $hmacSecret)
    {
        if ($hmacSecret === '') {
            throw new \InvalidArgumentException('the HMAC secret is empty: set it to the gateway\'s --token-hmac-secret');
        }
    }

    /**
     * A connection token: `sub` is the user id ('' for an anonymous user), `exp` a Unix time (0: never expires),
     * `info` what other clients see of this connection in presence and join/leave, `channels` server-side
     * subscriptions made at connect.
     */
    public function connection(string $user, int $exp = 0, mixed $info = null, array $channels = []): string
    {
        $claims = ['sub' => $user, 'iat' => time()];
        if ($exp > 0) {
            $claims['exp'] = $exp;
        }
        if ($info !== null) {
            $claims['info'] = $info;
        }
        if ($channels !== []) {
            $claims['channels'] = array_values($channels);
        }
        return $this->sign($claims);
    }

    /** A subscription token: lets `$user` into `$channel` where its namespace does not let every client in. */
    public function subscription(string $user, string $channel, int $exp = 0, mixed $info = null): string
    {
        $claims = ['sub' => $user, 'channel' => $channel, 'iat' => time()];
        if ($exp > 0) {
            $claims['exp'] = $exp;
        }
        if ($info !== null) {
            $claims['info'] = $info;
        }
        return $this->sign($claims);
    }

    /** header.payload.signature, each part base64url without padding (RFC 7519). */
    private function sign(array $claims): string
    {
        $header = self::base64url(self::json(['alg' => 'HS256', 'typ' => 'JWT']));
        $payload = self::base64url(self::json($claims));
        $signature = hash_hmac('sha256', "$header.$payload", $this->hmacSecret, true);
        return "$header.$payload." . self::base64url($signature);
    }

    private static function base64url(string $bytes): string
    {
        return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
    }

    private static function json(array $value): string
    {
        return json_encode($value, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR);
    }
}
