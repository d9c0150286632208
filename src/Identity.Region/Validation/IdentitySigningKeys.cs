using System.Collections.Frozen;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Region.Validation;

/// <summary>
/// Identity's token-signing keys as this service knows them: fetched from discovery's <c>jwks_uri</c>, fetched again
/// every <see cref="IdentityTokenValidationOptions.KeyRefreshInterval"/> (sooner after a failure, and on demand when a
/// token names an unknown <c>kid</c>), kept in <see cref="IdentityTokenValidationOptions.KeyCacheFile"/> and usable
/// until <see cref="IdentityTokenValidationOptions.MaxKeyStaleness"/> after the last successful fetch. Our own store
/// rather than IdentityModel's ConfigurationManager, so that how long old keys are trusted is our rule, not its.
/// </summary>
public sealed class IdentitySigningKeys : BackgroundService
{
    /// <summary>The HttpClient that fetches discovery and the JWKS (a host may route it, e.g. to a test server).</summary>
    public const string HttpClientName = "Identity.Region.SigningKeys";

    private static readonly JsonSerializerOptions CacheJson = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private readonly IdentityTokenValidationOptions _options;
    private readonly IHttpClientFactory _httpClients;
    private readonly TimeProvider _time;
    private readonly ILogger<IdentitySigningKeys> _logger;
    private readonly string? _cacheFile;
    private readonly SemaphoreSlim _fetch = new(1, 1);
    private volatile KeySet? _keys;
    private long _lastUnknownKeyFetch;
    private int _staleReported;

    public IdentitySigningKeys(
        IOptions<IdentityTokenValidationOptions> options, IHttpClientFactory httpClients, TimeProvider time,
        ILogger<IdentitySigningKeys> logger, IHostEnvironment? environment = null)
    {
        _options = options.Value;
        _httpClients = httpClients;
        _time = time;
        _logger = logger;
        _cacheFile = string.IsNullOrEmpty(_options.KeyCacheFile)
            ? null
            : Path.GetFullPath(_options.KeyCacheFile, environment?.ContentRootPath ?? AppContext.BaseDirectory);
    }

    /// <summary>When the keys in use were last fetched from Identity (null: never, not even from the cache file).</summary>
    public DateTimeOffset? LastFetchedAt => _keys?.FetchedAt;

    /// <summary>
    /// The keys, if they are fresh enough to trust. Past the staleness bound this is null and one error says why,
    /// once, until a fetch succeeds again.
    /// </summary>
    internal KeySet? Current
    {
        get
        {
            var keys = _keys;
            if (keys is null)
            {
                return null;
            }

            if (_time.GetUtcNow() - keys.FetchedAt <= _options.MaxKeyStaleness)
            {
                return keys;
            }

            if (Interlocked.Exchange(ref _staleReported, 1) == 0)
            {
                _logger.LogError(
                    "Identity's signing keys were last fetched at {FetchedAt:O}, more than IdentityTokenValidation:MaxKeyStaleness ({MaxKeyStaleness}) ago: every access token is refused until {Jwks} can be fetched again.",
                    keys.FetchedAt, _options.MaxKeyStaleness, keys.JwksUri);
            }

            return null;
        }
    }

    /// <summary>
    /// A token named a <c>kid</c> we do not know (Identity rotated its keys): fetch them again unless that was done
    /// less than <see cref="IdentityTokenValidationOptions.UnknownKeyRefreshInterval"/> ago. True when the key is now known.
    /// </summary>
    internal async ValueTask<bool> RefreshForUnknownKeyAsync(string? keyId, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow().UtcTicks;
        var last = Interlocked.Read(ref _lastUnknownKeyFetch);
        if (now - last < _options.UnknownKeyRefreshInterval.Ticks
            || Interlocked.CompareExchange(ref _lastUnknownKeyFetch, now, last) != last)
        {
            return false;
        }

        _logger.LogInformation("A token is signed with key {KeyId}, not among Identity's keys known here: fetching them again.", keyId);
        return await TryFetchAsync(cancellationToken) && (keyId is null || _keys?.ByKeyId.ContainsKey(keyId) == true);
    }

    /// <summary>Uses <paramref name="jwks"/> as if just fetched (the validation benchmark, which has no Identity to ask).</summary>
    internal void Use(string jwks, Uri jwksUri) => _keys = KeySet.Parse(jwks, jwksUri, _time.GetUtcNow());

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_cacheFile is not null && File.Exists(_cacheFile))
        {
            if (LoadCacheFile(_cacheFile) is { } cached)
            {
                _keys = cached;
                _logger.LogInformation("Identity's signing keys loaded from {KeyCacheFile} (fetched at {FetchedAt:O}).", _cacheFile, cached.FetchedAt);
            }
        }

        if (_keys is null)
        {
            // Nothing to validate with: wait for Identity, at most StartupTimeout, retrying meanwhile.
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.StartupTimeout);
            while (!await TryFetchAsync(timeout.Token))
            {
                try
                {
                    await Task.Delay(TimeSpan.FromTicks(Math.Min(_options.KeyRetryInterval.Ticks, TimeSpan.FromSeconds(1).Ticks)), timeout.Token);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new InvalidOperationException(
                        $"Identity's signing keys could not be fetched from {_options.DiscoveryEndpoint} within IdentityTokenValidation:StartupTimeout "
                        + $"({_options.StartupTimeout}), and there is no key cache file to start from"
                        + (_cacheFile is null ? " (IdentityTokenValidation:KeyCacheFile is not set)." : $" ({_cacheFile})."));
                }
            }
        }

        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var fetched = _keys is { } keys && _time.GetUtcNow() - keys.FetchedAt < _options.KeyRetryInterval;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(fetched ? _options.KeyRefreshInterval : _options.KeyRetryInterval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            fetched = await TryFetchAsync(stoppingToken);
        }
    }

    /// <summary>Fetches discovery and the JWKS once; false (and a warning) when Identity could not be reached or answered nonsense.</summary>
    internal async Task<bool> TryFetchAsync(CancellationToken cancellationToken)
    {
        await _fetch.WaitAsync(cancellationToken);
        try
        {
            var http = _httpClients.CreateClient(HttpClientName);
            var discovery = await http.GetFromJsonAsync<JsonElement>(_options.DiscoveryEndpoint, cancellationToken);
            // OpenID Connect Discovery §4.3: the issuer in the document must be the one we were configured with.
            var issuer = discovery.TryGetProperty("issuer", out var iss) ? iss.GetString() : null;
            if (!string.Equals(issuer, _options.Issuer, StringComparison.Ordinal))
            {
                throw new InvalidDataException($"discovery names the issuer '{issuer}', not the configured '{_options.Issuer}'");
            }

            var jwksUri = discovery.TryGetProperty("jwks_uri", out var uri) && Uri.TryCreate(uri.GetString(), UriKind.Absolute, out var parsed)
                ? parsed
                : throw new InvalidDataException("discovery has no jwks_uri");
            if (AuthorityUrl.Validate(jwksUri, "jwks_uri") is { Failed: true })
            {
                throw new InvalidDataException($"the jwks_uri {jwksUri} is not https");
            }

            var jwks = await http.GetStringAsync(jwksUri, cancellationToken);
            var keys = KeySet.Parse(jwks, jwksUri, _time.GetUtcNow());
            _keys = keys;
            Volatile.Write(ref _staleReported, 0);
            _logger.LogDebug("Identity's signing keys fetched from {Jwks}: {Count} keys.", jwksUri, keys.ByKeyId.Count);
            await SaveCacheFileAsync(keys, cancellationToken);
            return true;
        }
        catch (Exception e) when (e is HttpRequestException or JsonException or InvalidDataException or ArgumentException or NotSupportedException
            || (e is TaskCanceledException or OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            _logger.LogWarning(
                "Identity's signing keys could not be fetched from {Discovery}: {Reason}. Validating with the keys fetched at {FetchedAt:O} until they are older than {MaxKeyStaleness}.",
                _options.DiscoveryEndpoint, e.Message, _keys?.FetchedAt, _options.MaxKeyStaleness);
            return false;
        }
        finally
        {
            _fetch.Release();
        }
    }

    private KeySet? LoadCacheFile(string path)
    {
        try
        {
            var cached = JsonSerializer.Deserialize<CacheFile>(File.ReadAllText(path), CacheJson);
            if (cached is null || cached.Issuer != _options.Issuer || cached.JwksUri is null || cached.Jwks is null)
            {
                _logger.LogWarning("The key cache file {KeyCacheFile} is for another issuer or incomplete: ignored.", path);
                return null;
            }

            return KeySet.Parse(cached.Jwks, cached.JwksUri, cached.FetchedAt);
        }
        catch (Exception e) when (e is IOException or JsonException or ArgumentException or UnauthorizedAccessException)
        {
            _logger.LogWarning("The key cache file {KeyCacheFile} could not be read: {Reason}. Ignored.", path, e.Message);
            return null;
        }
    }

    private async Task SaveCacheFileAsync(KeySet keys, CancellationToken cancellationToken)
    {
        if (_cacheFile is null)
        {
            return;
        }

        try
        {
            // Public keys only; written aside and moved over, so a crash never leaves half a file.
            Directory.CreateDirectory(Path.GetDirectoryName(_cacheFile)!);
            var temporary = _cacheFile + ".tmp";
            await File.WriteAllTextAsync(temporary, JsonSerializer.Serialize(new CacheFile(_options.Issuer, keys.JwksUri, keys.Json, keys.FetchedAt), CacheJson), cancellationToken);
            File.Move(temporary, _cacheFile, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("The key cache file {KeyCacheFile} could not be written: {Reason}.", _cacheFile, e.Message);
        }
    }

    public override void Dispose()
    {
        _fetch.Dispose();
        base.Dispose();
    }

    private sealed record CacheFile(string Issuer, Uri? JwksUri, [property: JsonPropertyName("jwks")] string? Jwks, DateTimeOffset FetchedAt);
}

/// <summary>One fetched JWKS: its signing keys by <c>kid</c>, and when it was fetched.</summary>
internal sealed class KeySet
{
    private KeySet(string json, Uri jwksUri, DateTimeOffset fetchedAt, FrozenDictionary<string, SecurityKey> byKeyId, SecurityKey[] all)
    {
        Json = json;
        JwksUri = jwksUri;
        FetchedAt = fetchedAt;
        ByKeyId = byKeyId;
        All = all;
    }

    public string Json { get; }

    public Uri JwksUri { get; }

    public DateTimeOffset FetchedAt { get; }

    public FrozenDictionary<string, SecurityKey> ByKeyId { get; }

    public SecurityKey[] All { get; }

    public static KeySet Parse(string json, Uri jwksUri, DateTimeOffset fetchedAt)
    {
        var set = new JsonWebKeySet(json) { SkipUnresolvedJsonWebKeys = true };
        // Signature keys only (RFC 7517 §4.2: Identity's JWKS also publishes its encryption key), converted once to
        // RSA / ECDSA keys so that every verification reuses them.
        var keys = set.GetSigningKeys().Where(k => k is RsaSecurityKey or ECDsaSecurityKey).ToArray();
        if (keys.Length == 0)
        {
            throw new InvalidDataException("the JWKS has no RSA or EC signature keys");
        }

        return new KeySet(json, jwksUri, fetchedAt,
            keys.Where(k => !string.IsNullOrEmpty(k.KeyId)).DistinctBy(k => k.KeyId).ToFrozenDictionary(k => k.KeyId, StringComparer.Ordinal),
            keys);
    }
}
