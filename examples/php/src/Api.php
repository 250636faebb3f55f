<?php
// The server HTTP API of Switchboard (`POST /api/<method>` with an API key), with PHP's own HTTP stream wrapper.

declare(strict_types=1);

namespace Switchboard;

/** An error the API answered with: `code` is the Centrifugo error code (107 bad request, 102 unknown channel, ...). */
final class ApiError extends \RuntimeException
{
}

final class Api
{
    /** @param string $url e.g. http://127.0.0.1:8000/api */
    public function __construct(private readonly string $url, private readonly string $apiKey, private readonly float $timeoutSeconds = 5.0)
    {
    }

    /**
     * Publishes `$data` (anything json_encode takes) into a channel; `$options` may hold `idempotency_key`, `tags`
     * (string => string) and `skip_history`. Returns ['offset' => N, 'epoch' => '...'].
     */
    public function publish(string $channel, mixed $data, array $options = []): array
    {
        return $this->call('publish', ['channel' => $channel, 'data' => $data] + $options);
    }

    /** Same data into many channels; one result or error per channel, in order. */
    public function broadcast(array $channels, mixed $data, array $options = []): array
    {
        return $this->call('broadcast', ['channels' => array_values($channels), 'data' => $data] + $options);
    }

    /** Who is in a channel now: client id => ['client', 'user', 'conn_info', 'chan_info']. */
    public function presence(string $channel): array
    {
        return $this->call('presence', ['channel' => $channel])['presence'] ?? [];
    }

    /** ['num_clients' => N, 'num_users' => N]. */
    public function presenceStats(string $channel): array
    {
        return $this->call('presence_stats', ['channel' => $channel]);
    }

    /**
     * The channel's kept publications: `$limit` of them (-1: all kept, 0: only the position), after `$since`
     * (['offset' => N, 'epoch' => '...']) when given, newest first when `$reverse`.
     */
    public function history(string $channel, int $limit = -1, ?array $since = null, bool $reverse = false): array
    {
        $body = ['channel' => $channel, 'limit' => $limit, 'reverse' => $reverse];
        if ($since !== null) {
            $body['since'] = $since;
        }
        return $this->call('history', $body);
    }

    /** Any other method of the API by name, e.g. call('disconnect', ['user' => '42']). */
    public function call(string $method, array $params): array
    {
        $body = json_encode($params === [] ? new \stdClass() : $params, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR);
        $context = stream_context_create(['http' => [
            'method' => 'POST',
            'header' => "Content-Type: application/json\r\nX-API-Key: {$this->apiKey}\r\n",
            'content' => $body,
            'timeout' => $this->timeoutSeconds,
            // Error statuses still carry a JSON body worth reading.
            'ignore_errors' => true,
        ]]);
        $raw = @file_get_contents("{$this->url}/{$method}", false, $context);
        if ($raw === false) {
            throw new ApiError("Switchboard API at {$this->url} is unreachable", 0);
        }
        $status = self::status($http_response_header ?? []);
        $reply = json_decode($raw, true);
        if (!is_array($reply)) {
            throw new ApiError("Switchboard API answered HTTP $status without JSON", 0);
        }
        if (isset($reply['error'])) {
            throw new ApiError((string) ($reply['error']['message'] ?? 'error'), (int) ($reply['error']['code'] ?? 0));
        }
        return $reply['result'] ?? [];
    }

    private static function status(array $headers): int
    {
        return preg_match('#^HTTP/\S+ (\d{3})#', $headers[0] ?? '', $m) === 1 ? (int) $m[1] : 0;
    }
}
