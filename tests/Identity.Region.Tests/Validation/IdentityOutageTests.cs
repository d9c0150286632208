using System.Net;
using System.Security.Cryptography.X509Certificates;
using Identity.Region.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using static Identity.Region.Tests.Infrastructure.ApiCalls;

namespace Identity.Region.Tests.Validation;

/// <summary>
/// The regional API while Identity is away: the real Identity.Server as a process of its own, issuing certificate-bound
/// tokens over mutual TLS, killed and started again; the API's clock is a test clock moved past the staleness bound.
/// </summary>
public sealed class IdentityOutageTests : IAsyncLifetime
{
    private readonly TestClock _clock = new(DateTimeOffset.UtcNow);
    private readonly string _directory = Directory.CreateTempSubdirectory("region-outage-").FullName;
    private readonly X509Certificate2 _ca = TestCertificates.Authority("CN=Region Services CA");
    private readonly X509Certificate2 _serverCertificate = TestCertificates.Server();
    private readonly List<RegionApiHost> _apis = [];
    private X509Certificate2 _orders = null!;
    private IdentityProcess _identity = null!;

    public async Task InitializeAsync()
    {
        _orders = TestCertificates.Client(_ca, IdentityProcess.ServiceSubject);
        _identity = await IdentityProcess.LaunchAsync(_ca);
    }

    public async Task DisposeAsync()
    {
        foreach (var api in _apis)
        {
            await api.DisposeAsync();
        }

        await _identity.DisposeAsync();
        _orders.Dispose();
        _ca.Dispose();
        _serverCertificate.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task Validate_IdentityKilled_AcceptsFromCachedKeysUntilTheStalenessBoundThenRefuses()
    {
        // Arrange: the API fetched Identity's keys; the caller holds two bound tokens, one not yet presented.
        var api = await ApiAsync();
        using var caller = api.Caller(_orders);
        var presented = await _identity.BoundTokenAsync(_orders);
        var held = await _identity.BoundTokenAsync(_orders);
        Assert.Equal(HttpStatusCode.OK, (await caller.GetOrdersAsync(presented)).StatusCode);

        // Act: Identity dies.
        await _identity.KillAsync();

        // Assert: a token never seen is verified with the cached keys until the bound (30 min here)...
        _clock.Advance(TimeSpan.FromMinutes(29));
        Assert.Equal(HttpStatusCode.OK, (await caller.GetOrdersAsync(held)).StatusCode);

        // ...and past it every token is refused, with one log line saying why.
        _clock.Advance(TimeSpan.FromMinutes(2));
        AssertInvalidToken(await caller.GetOrdersAsync(held));
        AssertInvalidToken(await caller.GetOrdersAsync(presented));
        var stale = Assert.Single(api.Log.Lines, l => l.Level == LogLevel.Error && l.Message.Contains("MaxKeyStaleness", StringComparison.Ordinal));
        Assert.Contains("every access token is refused", stale.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_IdentityKilled_RegionApiStartsFromTheKeyCacheFileAndValidates()
    {
        // Arrange: a first run of the API persisted the keys; the caller holds a bound token.
        await (await ApiAsync()).DisposeAsync();
        _apis.Clear();
        var token = await _identity.BoundTokenAsync(_orders);

        // Act: Identity dies, then the API starts again.
        await _identity.KillAsync();
        var api = await ApiAsync();
        using var caller = api.Caller(_orders);

        // Assert
        Assert.Equal(HttpStatusCode.OK, (await caller.GetOrdersAsync(token)).StatusCode);
    }

    [Fact]
    public async Task Validate_IdentityBackWithARotatedKey_TokensOfTheNewKeyAccepted()
    {
        // Arrange: the API knows the keys of before the outage.
        var api = await ApiAsync();
        using var caller = api.Caller(_orders);
        var before = await _identity.BoundTokenAsync(_orders);
        Assert.Equal(HttpStatusCode.OK, (await caller.GetOrdersAsync(before)).StatusCode);
        await _identity.KillAsync();

        // Act: Identity comes back and an administrator rotates the access-token key.
        await _identity.StartAsync();
        await _identity.RotateAccessTokenKeyAsync();
        var after = await _identity.BoundTokenAsync(_orders);

        // Assert: signed by a key the API has never seen, accepted on the first call.
        Assert.NotEqual(new JsonWebToken(before).Kid, new JsonWebToken(after).Kid);
        Assert.Equal(HttpStatusCode.OK, (await caller.GetOrdersAsync(after)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await caller.GetOrdersAsync(before)).StatusCode);
    }

    private async Task<RegionApiHost> ApiAsync()
    {
        var settings = new Dictionary<string, string?>
        {
            ["IdentityTokenValidation:Authority"] = _identity.Authority.AbsoluteUri,
            ["IdentityTokenValidation:Audiences:0"] = IdentityProcess.Audience,
            ["IdentityTokenValidation:TrustedCaFile"] = _identity.ServicesCaFile,
            ["IdentityTokenValidation:RequireCertificateBinding"] = "true",
            ["IdentityTokenValidation:KeyCacheFile"] = Path.Combine(_directory, "identity-keys.json"),
            ["IdentityTokenValidation:MaxKeyStaleness"] = "00:30:00",
            ["IdentityTokenValidation:KeyRefreshInterval"] = "00:10:00",
        };
        var api = await RegionApiHost.StartAsync(_clock, settings, _serverCertificate);
        _apis.Add(api);
        return api;
    }
}
