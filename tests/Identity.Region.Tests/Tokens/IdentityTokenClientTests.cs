using System.Diagnostics;
using System.Security.Cryptography;
using Identity.Region.Tests.Infrastructure;
using Identity.Region.Tokens;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Identity.Region.Tests.Tokens;

/// <summary>The regional token client against a token endpoint on a real socket.</summary>
public sealed class IdentityTokenClientTests : IAsyncLifetime
{
    private readonly TestClock _clock = new();
    private FakeTokenEndpoint _identity = null!;
    private ServiceProvider? _services;

    public async Task InitializeAsync() => _identity = await FakeTokenEndpoint.StartAsync();

    public async Task DisposeAsync()
    {
        if (_services is not null)
        {
            await _services.DisposeAsync();
        }

        await _identity.DisposeAsync();
    }

    [Fact]
    public async Task GetTokenAsync_HundredConcurrentCallers_MakeOneTokenRequest()
    {
        _identity.Latency = TimeSpan.FromMilliseconds(300);
        var client = TokenClient();

        var tokens = await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => Task.Run(async () => await client.GetTokenAsync())));

        Assert.Equal(1, _identity.Requests);
        Assert.All(tokens, t => Assert.Equal("token-1", t));
    }

    [Fact]
    public async Task GetTokenAsync_TokenCloseToExpiry_IsReusedUntilThenReplaced()
    {
        _identity.ExpiresIn = 600;
        var client = TokenClient(o => o.RefreshBeforeExpiry = TimeSpan.FromSeconds(60));

        var first = await client.GetTokenAsync();
        _clock.Advance(TimeSpan.FromSeconds(539));
        var reused = await client.GetTokenAsync();
        _clock.Advance(TimeSpan.FromSeconds(2));
        var replaced = await client.GetTokenAsync();

        Assert.Equal("token-1", first);
        Assert.Equal("token-1", reused);
        Assert.Equal("token-2", replaced);
        Assert.Equal(2, _identity.Requests);
    }

    [Fact]
    public async Task GetTokenAsync_EndpointFailsTwiceThenSucceeds_ReturnsTheToken()
    {
        _identity.FailuresBeforeSuccess = 2;
        var client = TokenClient();

        var token = await client.GetTokenAsync();

        Assert.Equal("token-1", token);
        Assert.Equal(3, _identity.Requests);
    }

    [Fact]
    public async Task GetTokenAsync_EndpointStaysDown_OpensTheCircuitAndFailsFast()
    {
        _identity.FailuresBeforeSuccess = int.MaxValue;
        var client = TokenClient(o => o.CircuitMinimumThroughput = 2);
        await Assert.ThrowsAsync<HttpRequestException>(async () => await client.GetTokenAsync());
        var requestsWhenOpened = _identity.Requests;

        var watch = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<HttpRequestException>(async () => await client.GetTokenAsync());
        watch.Stop();

        Assert.Contains("circuit", error.Message);
        Assert.Contains("is open", error.Message);
        Assert.Contains(_identity.Authority.AbsoluteUri, error.Message);
        Assert.Equal(requestsWhenOpened, _identity.Requests);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1), $"An open circuit took {watch.Elapsed} to fail.");
    }

    [Fact]
    public async Task GetTokenAsync_InvalidClient_IsNotRetriedAndNamesTheClientNotTheSecret()
    {
        var client = TokenClient(o => o.ClientSecret = "the-wrong-secret");

        var error = await Assert.ThrowsAsync<HttpRequestException>(async () => await client.GetTokenAsync());

        Assert.Equal(1, _identity.Requests);
        Assert.Contains(FakeTokenEndpoint.ClientId, error.Message);
        Assert.Contains("invalid_client", error.Message);
        Assert.DoesNotContain("the-wrong-secret", error.Message);
    }

    [Fact]
    public async Task AddIdentityAccessToken_OutgoingRequest_CarriesTheBearerToken()
    {
        var services = Services();
        services.AddHttpClient("api", http => http.BaseAddress = _identity.Authority).AddIdentityAccessToken();
        _services = services.BuildServiceProvider();
        var http = _services.GetRequiredService<IHttpClientFactory>().CreateClient("api");

        var first = await http.GetStringAsync("api/echo");
        var second = await http.GetStringAsync("api/echo");

        Assert.Equal("Bearer token-1", first);
        Assert.Equal("Bearer token-1", second);
        Assert.Equal(1, _identity.Requests);
    }

    [Fact]
    public async Task GetTokenAsync_PrivateKeyJwt_SendsAnAssertionSignedByTheKeyForTheIssuer()
    {
        using var key = RSA.Create(2048);
        var pem = Path.GetTempFileName();
        await File.WriteAllTextAsync(pem, key.ExportPkcs8PrivateKeyPem());
        _identity.AssertionKey = key;
        try
        {
            var client = TokenClient(o => (o.ClientSecret, o.PrivateKeyPath, o.KeyId) = (null, pem, "key-1"));

            var token = await client.GetTokenAsync();

            Assert.Equal("token-1", token);
            var claims = _identity.LastAssertion!.Value;
            Assert.Equal(FakeTokenEndpoint.ClientId, claims.GetProperty("sub").GetString());
            Assert.Equal(_identity.Authority.AbsoluteUri, claims.GetProperty("aud").GetString());
        }
        finally
        {
            File.Delete(pem);
        }
    }

    [Fact]
    public async Task GetTokenAsync_PrivateKeyJwtRetried_EachAttemptCarriesAFreshAssertion()
    {
        using var key = RSA.Create(2048);
        var pem = Path.GetTempFileName();
        await File.WriteAllTextAsync(pem, key.ExportPkcs8PrivateKeyPem());
        _identity.AssertionKey = key;
        _identity.FailuresBeforeSuccess = 1;
        try
        {
            var client = TokenClient(o => (o.ClientSecret, o.PrivateKeyPath) = (null, pem));

            var token = await client.GetTokenAsync();

            Assert.Equal("token-1", token);
            Assert.Equal(2, _identity.Assertions.Count);
            Assert.Equal(2, _identity.Assertions.Distinct().Count());
        }
        finally
        {
            File.Delete(pem);
        }
    }

    [Fact]
    public void Options_NeitherSecretNorKey_FailNamingBoth()
    {
        var client = () => TokenClient(o => o.ClientSecret = null);

        var error = Assert.Throws<OptionsValidationException>(client);

        Assert.Contains("IdentityTokenClient: set exactly one of ClientSecret", error.Message);
        Assert.Contains("PrivateKeyPath", error.Message);
    }

    [Fact]
    public void Options_SecretAndCertificate_FailNamingTheThreeWays()
    {
        var client = () => TokenClient(o => o.CertificateFile = "/run/secrets/client.crt");

        var error = Assert.Throws<OptionsValidationException>(client);

        Assert.Contains("set exactly one of ClientSecret (client_secret_basic), PrivateKeyPath (private_key_jwt) and CertificateFile (mutual TLS)", error.Message);
    }

    [Fact]
    public void Options_CertificateFileWithoutItsKey_FailNamingTheKey()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var now = DateTimeOffset.UtcNow;
        using var certificate = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=orders.eu", key, HashAlgorithmName.SHA256)
            .CreateSelfSigned(now, now.AddDays(1));
        var file = Path.GetTempFileName();
        File.WriteAllText(file, certificate.ExportCertificatePem());
        try
        {
            var client = () => TokenClient(o => (o.ClientSecret, o.CertificateFile) = (null, file));

            var error = Assert.Throws<OptionsValidationException>(client);

            Assert.Contains("IdentityTokenClient:CertificateFile cannot be read as a certificate with its private key", error.Message);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private IdentityTokenClient TokenClient(Action<IdentityTokenClientOptions>? configure = null)
    {
        _services = Services(configure).BuildServiceProvider();
        return _services.GetRequiredKeyedService<IdentityTokenClient>(TokenClientExtensions.DefaultName);
    }

    private ServiceCollection Services(Action<IdentityTokenClientOptions>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<TimeProvider>(_clock);
        services.AddSingleton<Microsoft.Extensions.Configuration.IConfiguration>(new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build());
        services.AddIdentityTokenClient().Configure(o =>
        {
            o.Authority = _identity.Authority;
            o.ClientId = FakeTokenEndpoint.ClientId;
            o.ClientSecret = FakeTokenEndpoint.ClientSecret;
            // Short delays keep the test quick; the backoff and jitter are Polly's.
            o.RetryDelay = TimeSpan.FromMilliseconds(10);
            configure?.Invoke(o);
        });
        return services;
    }
}
