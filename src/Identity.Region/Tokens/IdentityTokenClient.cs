using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly.CircuitBreaker;

namespace Identity.Region.Tokens;

/// <summary>
/// Client-credentials tokens (RFC 6749 §4.4) for a regional service's outgoing calls: one cached token per client,
/// replaced shortly before it expires, and one token request at a time however many callers ask at once. The
/// retries and the circuit breaker sit on its <see cref="HttpClient"/> (see <see cref="TokenClientExtensions"/>).
/// </summary>
public sealed class IdentityTokenClient : IDisposable
{
    /// <summary>Assumed when a response has no <c>expires_in</c> (it is only RECOMMENDED, RFC 6749 §5.1).</summary>
    private static readonly TimeSpan DefaultLifetime = TimeSpan.FromMinutes(5);

    private readonly string _name;
    private readonly IHttpClientFactory _httpClients;
    private readonly IdentityTokenClientOptions _options;
    private readonly TokenClientAuthentication _authentication;
    private readonly TimeProvider _time;
    private readonly ILogger<IdentityTokenClient> _logger;
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private volatile CachedToken? _cached;

    public IdentityTokenClient(string name, IHttpClientFactory httpClients, IOptionsMonitor<IdentityTokenClientOptions> options, TimeProvider time, ILogger<IdentityTokenClient> logger)
    {
        _name = name;
        _httpClients = httpClients;
        _options = options.Get(name);
        _time = time;
        _logger = logger;
        _authentication = _options.Authentication
            ?? (!string.IsNullOrEmpty(_options.CertificateFile) ? MutualTlsAuthentication.Load(_options, time, logger)
                : !string.IsNullOrEmpty(_options.PrivateKeyPath) ? PrivateKeyJwtAuthentication.Load(_options.PrivateKeyPath, _options.KeyId)
                : ClientSecretBasicAuthentication.Instance);
    }

    /// <summary>A valid access token: the cached one, or a new one when it is close to expiry.</summary>
    public async ValueTask<string> GetTokenAsync(CancellationToken cancellationToken = default)
    {
        if (_cached is { } cached && IsFresh(cached))
        {
            return cached.AccessToken;
        }

        // Single flight: the callers who find no fresh token queue here, and all but the first find the one it got.
        await _refresh.WaitAsync(cancellationToken);
        try
        {
            if (_cached is { } refreshed && IsFresh(refreshed))
            {
                return refreshed.AccessToken;
            }

            _cached = await RequestAsync(cancellationToken);
            return _cached.AccessToken;
        }
        finally
        {
            _refresh.Release();
        }
    }

    /// <summary>How this client authenticates at the token endpoint.</summary>
    public TokenClientAuthentication Authentication => _authentication;

    /// <summary>
    /// Not close to expiry, and bound to the certificate presented now: after a rotation the old token would be
    /// refused by every API that checks the binding (RFC 8705 §3), so a new one is requested.
    /// </summary>
    private bool IsFresh(CachedToken token) => _time.GetUtcNow() < token.RefreshAt && token.Binding == _authentication.Binding;

    internal IdentityTokenClientOptions Options => _options;

    /// <summary>Forgets <paramref name="accessToken"/> if it is the cached one (the API refused it: revoked, or keys rotated).</summary>
    public void Invalidate(string accessToken)
    {
        if (_cached is { } cached && cached.AccessToken == accessToken)
        {
            _cached = null;
        }
    }

    private async Task<CachedToken> RequestAsync(CancellationToken cancellationToken)
    {
        var http = _httpClients.CreateClient(TokenClientExtensions.HttpClientName(_name));
        // Read before the request: should the certificate change meanwhile, the next caller asks again.
        var binding = _authentication.Binding;
        Uri endpoint;
        try
        {
            endpoint = await _authentication.TokenEndpointAsync(_options, http, cancellationToken);
        }
        catch (BrokenCircuitException e)
        {
            throw CircuitOpen(new Uri(_options.AuthorityBase, ".well-known/openid-configuration"), e);
        }
        catch (HttpRequestException e) when (e.InnerException is not null)
        {
            throw new HttpRequestException($"Identity at {_options.AuthorityBase} could not be reached for client '{_options.ClientId}': {e.Message}", e, e.StatusCode);
        }
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials" };
        if (_options.Scope is { Length: > 0 } scope)
        {
            form["scope"] = scope;
        }

        // The credentials are added per attempt by ClientAuthenticationHandler, inside the retries: a retried
        // private_key_jwt request carries a new assertion (a new jti, RFC 7523 §3 item 7), not a replayed one.
        using var request = new HttpRequestMessage(HttpMethod.Post, endpoint);
        request.Options.Set(ClientAuthenticationHandler.Form, form);

        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, cancellationToken);
        }
        catch (BrokenCircuitException e)
        {
            throw CircuitOpen(endpoint, e);
        }
        catch (HttpRequestException e)
        {
            throw new HttpRequestException($"Identity's token endpoint at {endpoint} could not be reached for client '{_options.ClientId}': {e.Message}", e, e.StatusCode);
        }

        using (response)
        {
            var requestedAt = _time.GetUtcNow();
            if (!response.IsSuccessStatusCode)
            {
                // The error code only (RFC 6749 §5.2), never the secret nor the body's description.
                var error = ErrorCode(await response.Content.ReadAsStringAsync(cancellationToken));
                _logger.LogWarning("Identity refused a token to client {ClientId}: {Status} {Error}.", _options.ClientId, (int)response.StatusCode, error);
                throw new HttpRequestException(
                    $"Identity refused a token to client '{_options.ClientId}' at {endpoint}: {(int)response.StatusCode} {error}.", null, response.StatusCode);
            }

            using var body = JsonDocument.Parse(await response.Content.ReadAsStreamAsync(cancellationToken));
            var root = body.RootElement;
            var accessToken = root.TryGetProperty("access_token", out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } token
                ? token
                : throw new HttpRequestException($"Identity's token response for client '{_options.ClientId}' has no access_token.");
            if (!root.TryGetProperty("token_type", out var type) || !string.Equals(type.GetString(), "Bearer", StringComparison.OrdinalIgnoreCase))
            {
                // RFC 6749 §7.1: a client must not use a token type it does not understand (a DPoP-bound one needs proofs).
                throw new HttpRequestException($"Identity's token response for client '{_options.ClientId}' is not a Bearer token.");
            }

            var lifetime = root.TryGetProperty("expires_in", out var expiresIn) && expiresIn.TryGetInt64(out var seconds) && seconds > 0
                ? TimeSpan.FromSeconds(seconds)
                : DefaultLifetime;
            // Replaced RefreshBeforeExpiry ahead, but never before half its life: a short-lived token is still reused.
            var margin = TimeSpan.FromTicks(Math.Min(_options.RefreshBeforeExpiry.Ticks, lifetime.Ticks / 2));
            _logger.LogDebug("Token for client {ClientId} obtained, valid for {Lifetime}.", _options.ClientId, lifetime);
            return new CachedToken(accessToken, requestedAt + lifetime - margin, binding);
        }
    }

    private HttpRequestException CircuitOpen(Uri endpoint, BrokenCircuitException e)
    {
        _logger.LogWarning("The circuit to Identity's token endpoint {Endpoint} is open: client {ClientId} gets no token until it closes.", endpoint, _options.ClientId);
        return new HttpRequestException(
            $"The circuit to Identity's token endpoint at {endpoint} is open after repeated failures; client '{_options.ClientId}' got no token. "
            + $"A trial request goes through after {_options.CircuitBreakDuration}.", e, HttpStatusCode.ServiceUnavailable);
    }

    private static string ErrorCode(string body)
    {
        try
        {
            using var json = JsonDocument.Parse(body);
            return json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("error", out var error) ? error.GetString() ?? "" : "";
        }
        catch (JsonException)
        {
            return "";
        }
    }

    public void Dispose()
    {
        _refresh.Dispose();
        if (!ReferenceEquals(_authentication, _options.Authentication))
        {
            (_authentication as IDisposable)?.Dispose();
        }
    }

    private sealed record CachedToken(string AccessToken, DateTimeOffset RefreshAt, string? Binding);
}
