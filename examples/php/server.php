<?php
// A small backend for a Switchboard app: hands out tokens to its users and publishes for them.
// Run it with PHP's built-in server: php -S 127.0.0.1:8080 server.php (see README.md).

declare(strict_types=1);

require __DIR__ . '/src/Tokens.php';
require __DIR__ . '/src/Api.php';

use Switchboard\Api;
use Switchboard\ApiError;
use Switchboard\Tokens;

function env(string $name, ?string $default = null): string
{
    $value = getenv($name);
    if ($value === false || $value === '') {
        if ($default === null) {
            reply(500, ['error' => "set $name"]);
        }
        return $default;
    }
    return $value;
}

function reply(int $status, array $body): never
{
    http_response_code($status);
    header('Content-Type: application/json');
    echo json_encode($body === [] ? new stdClass() : $body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
    exit;
}

/** The signed-in user. A real app takes it from its session; this example trusts `?user=` to stay short. */
function currentUser(): string
{
    $user = $_GET['user'] ?? '';
    if (!is_string($user) || $user === '') {
        reply(401, ['error' => 'sign in first (?user=<id> in this example)']);
    }
    return $user;
}

function param(string $name): string
{
    $value = $_GET[$name] ?? '';
    if (!is_string($value) || $value === '') {
        reply(400, ['error' => "\"$name\" is required"]);
    }
    return $value;
}

$tokens = new Tokens(env('SWITCHBOARD_TOKEN_HMAC_SECRET'));
$api = new Api(env('SWITCHBOARD_API_URL', 'http://127.0.0.1:8000/api'), env('SWITCHBOARD_API_KEY'));
$ttl = (int) env('TOKEN_TTL_SECONDS', '3600');
$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);

try {
    switch ($_SERVER['REQUEST_METHOD'] . ' ' . $path) {
        // The SDK's getToken fetches this: new Centrifuge(url, { getToken: () => fetch('/token').then(...) }).
        case 'GET /token':
            $user = currentUser();
            reply(200, ['token' => $tokens->connection($user, time() + $ttl, ['name' => $user])]);
        // A subscription's getToken, for channels whose namespace lets in only token holders.
        case 'GET /subscription-token':
            $user = currentUser();
            $channel = param('channel');
            // Decide here who may read the channel; this example lets everyone into "secret:" channels.
            if (!str_starts_with($channel, 'secret:')) {
                reply(403, ['error' => 'no subscription tokens for this channel']);
            }
            reply(200, ['token' => $tokens->subscription($user, $channel, time() + $ttl)]);
        case 'POST /publish':
            $user = currentUser();
            $body = json_decode((string) file_get_contents('php://input'), true);
            if (!is_array($body) || !is_string($body['channel'] ?? null) || !array_key_exists('data', $body)) {
                reply(400, ['error' => 'body must be {"channel": "...", "data": ...}']);
            }
            $result = $api->publish($body['channel'], $body['data'], ['tags' => ['from' => $user]]);
            reply(200, $result);
        case 'GET /presence':
            // A map even when empty: json_encode writes an empty PHP array as [].
            reply(200, ['presence' => (object) $api->presence(param('channel')), 'stats' => $api->presenceStats(param('channel'))]);
        case 'GET /history':
            reply(200, $api->history(param('channel'), (int) ($_GET['limit'] ?? -1)));
        default:
            reply(404, ['error' => 'no such route']);
    }
} catch (ApiError $e) {
    // The API's own code and message say what to change.
    reply(502, ['error' => ['code' => $e->getCode(), 'message' => $e->getMessage()]]);
}
