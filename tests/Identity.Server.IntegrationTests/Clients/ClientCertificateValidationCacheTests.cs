using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Identity.Region.Tests.Infrastructure;
using Identity.Server.Clients;
using Identity.Server.Hosting;
using Identity.Server.IntegrationTests.Connect;
using Microsoft.Extensions.Options;

namespace Identity.Server.IntegrationTests.Clients;

/// <summary>
/// The reuse of a successful <c>tls_client_auth</c> validation (decision 0050): what it keeps, for how long, and that
/// it never lets a certificate in for a client it was not validated for.
/// </summary>
public sealed class ClientCertificateValidationCacheTests(MutualTlsTests.MutualTlsServer server)
    : IClassFixture<MutualTlsTests.MutualTlsServer>
{
    private static readonly ClientCertificateIdentity Registered = new("CN=orders.eu, O=Example", null, null);

    [Fact]
    public async Task ClientCredentials_CertificateJustAcceptedForItsClient_StillRefusedForAnotherClient()
    {
        // Arrange: the certificate validated (and kept) for svc-pki.
        var accepted = await server.TokenAsync(server.Mtls, "svc-pki", server.PkiClient);
        Assert.True(accepted.Status == HttpStatusCode.OK, accepted.Body.ToString());

        // Act: the same certificate at once for a client registered with another name.
        var (status, body) = await server.TokenAsync(server.Mtls, "svc-pki-uri", server.PkiClient);

        // Assert
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal("invalid_client", body.GetProperty("error").GetString());
    }

    [Fact]
    public void IsValid_WithinTheDuration_KeptForThatClientNameAndCertificateOnly()
    {
        var clock = new Clock();
        using var cache = Cache(clock, TimeSpan.FromMinutes(1));
        using var other = Certificate(DateTimeOffset.UtcNow.AddDays(30));

        cache.Remember("svc-pki", Registered, server.PkiClient);
        clock.Advance(TimeSpan.FromSeconds(59));

        Assert.True(cache.IsValid("svc-pki", Registered, server.PkiClient));
        Assert.False(cache.IsValid("svc-other", Registered, server.PkiClient));
        Assert.False(cache.IsValid("svc-pki", Registered with { SubjectDn = "CN=billing.eu, O=Example" }, server.PkiClient));
        Assert.False(cache.IsValid("svc-pki", Registered, other));
    }

    [Fact]
    public void IsValid_AfterTheDurationOrTheCertificatesExpiryOrAClear_NotKept()
    {
        var clock = new Clock();
        using var cache = Cache(clock, TimeSpan.FromMinutes(1));
        using var expiresSoon = Certificate(clock.GetUtcNow().AddSeconds(10));
        cache.Remember("svc-a", Registered, server.PkiClient);
        cache.Remember("svc-b", Registered, expiresSoon);
        cache.Remember("svc-c", Registered, server.PkiClient);

        clock.Advance(TimeSpan.FromSeconds(11));
        Assert.False(cache.IsValid("svc-b", Registered, expiresSoon));
        cache.Clear();
        Assert.False(cache.IsValid("svc-c", Registered, server.PkiClient));
        cache.Remember("svc-a", Registered, server.PkiClient);
        clock.Advance(TimeSpan.FromSeconds(61));
        Assert.False(cache.IsValid("svc-a", Registered, server.PkiClient));
    }

    [Fact]
    public void Remember_DurationZero_NothingKept()
    {
        using var cache = Cache(new Clock(), TimeSpan.Zero);

        cache.Remember("svc-pki", Registered, server.PkiClient);

        Assert.False(cache.IsValid("svc-pki", Registered, server.PkiClient));
    }

    private static ClientCertificateValidationCache Cache(TimeProvider clock, TimeSpan duration) =>
        new(new Monitor(new MutualTlsOptions { ValidationCacheDuration = duration }), clock);

    private static X509Certificate2 Certificate(DateTimeOffset notAfter) => TestCertificates.SelfSignedClient("CN=orders.eu, O=Example", notAfter: notAfter);

    private sealed class Clock : TimeProvider
    {
        private DateTimeOffset _now = DateTimeOffset.UtcNow;

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }

    private sealed class Monitor(MutualTlsOptions value) : IOptionsMonitor<MutualTlsOptions>
    {
        public MutualTlsOptions CurrentValue => value;

        public MutualTlsOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<MutualTlsOptions, string?> listener) => null;
    }
}
