using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Identity.Region.Tests.Infrastructure;
using static Identity.Region.Tests.Infrastructure.ApiCalls;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Region.Tests.Validation;

/// <summary>
/// A regional API protected by <c>AddIdentityTokenValidation</c> on Kestrel over TLS, its keys from an authority's
/// discovery and JWKS on a real socket, callers presenting certificates made here.
/// </summary>
public sealed class TokenValidationTests : IAsyncLifetime
{
    private readonly TestClock _clock = new();
    private readonly string _directory = Directory.CreateTempSubdirectory("region-validation-").FullName;
    private readonly X509Certificate2 _ca = TestCertificates.Authority("CN=Region Services CA");
    private readonly X509Certificate2 _otherCa = TestCertificates.Authority("CN=Another CA");
    private readonly X509Certificate2 _serverCertificate = TestCertificates.Server();
    private X509Certificate2 _orders = null!;
    private X509Certificate2 _billing = null!;
    private FakeAuthority _identity = null!;
    private RegionApiHost? _api;

    public async Task InitializeAsync()
    {
        _orders = TestCertificates.Client(_ca, "CN=orders.us, O=Example");
        _billing = TestCertificates.Client(_ca, "CN=billing.us, O=Example");
        await File.WriteAllTextAsync(CaFile, _ca.ExportCertificatePem());
        _identity = await FakeAuthority.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_api is not null)
        {
            await _api.DisposeAsync();
        }

        await _identity.DisposeAsync();
        foreach (var certificate in new[] { _ca, _otherCa, _serverCertificate, _orders, _billing })
        {
            certificate.Dispose();
        }

        Directory.Delete(_directory, recursive: true);
    }

    private string CaFile => Path.Combine(_directory, "ca.pem");

    [Fact]
    public async Task Get_BoundTokenWithItsCertificate_Accepted()
    {
        var api = await ApiAsync(requireBinding: true);
        using var caller = api.Caller(_orders);

        var response = await caller.GetOrdersAsync(_identity.Token(boundTo: _orders, now: _clock.GetUtcNow()));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("orders-us", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Get_BoundTokenWithoutACertificate_Refused401InvalidToken()
    {
        var api = await ApiAsync();
        using var caller = api.Caller(null);

        var response = await caller.GetOrdersAsync(_identity.Token(boundTo: _orders, now: _clock.GetUtcNow()));

        AssertInvalidToken(response);
    }

    [Fact]
    public async Task Get_BoundTokenWithAnotherTrustedCertificate_Refused401InvalidToken()
    {
        var api = await ApiAsync();
        using var caller = api.Caller(_billing);

        var response = await caller.GetOrdersAsync(_identity.Token(boundTo: _orders, now: _clock.GetUtcNow()));

        AssertInvalidToken(response);
    }

    [Fact]
    public async Task Get_BoundTokenReplayedAsPlainBearerBySomeoneElse_Refused401InvalidToken()
    {
        // Arrange: orders' token was accepted from orders; billing copies it and sends it as a plain bearer token.
        var api = await ApiAsync();
        var token = _identity.Token(boundTo: _orders, now: _clock.GetUtcNow());
        using var orders = api.Caller(_orders);
        Assert.Equal(HttpStatusCode.OK, (await orders.GetOrdersAsync(token)).StatusCode);
        using var someoneElse = api.Caller(null);

        // Act: the same token, now verified already (the repeated-token path).
        var response = await someoneElse.GetOrdersAsync(token);

        // Assert
        AssertInvalidToken(response);
    }

    [Fact]
    public async Task Get_UnboundTokenWhereBindingIsRequired_Refused401InvalidToken()
    {
        var api = await ApiAsync(requireBinding: true);
        using var caller = api.Caller(_orders);

        var response = await caller.GetOrdersAsync(_identity.Token(now: _clock.GetUtcNow()));

        AssertInvalidToken(response);
    }

    [Fact]
    public async Task Get_UnboundTokenWhereBindingIsNotRequired_Accepted()
    {
        var api = await ApiAsync(requireBinding: false);
        using var caller = api.Caller(null);

        var response = await caller.GetOrdersAsync(_identity.Token(now: _clock.GetUtcNow()));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Get_TokenBoundToACertificateFromAnUntrustedCa_Refused401InvalidToken()
    {
        // Arrange: the thumbprint matches, but the certificate's chain does not end in TrustedCaFile.
        var api = await ApiAsync();
        using var outsider = TestCertificates.Client(_otherCa, "CN=orders.us, O=Example");
        using var caller = api.Caller(outsider);

        var response = await caller.GetOrdersAsync(_identity.Token(boundTo: outsider, now: _clock.GetUtcNow()));

        AssertInvalidToken(response);
    }

    [Fact]
    public async Task Get_SelfSignedCertificate_AcceptedOnlyWhereAllowed()
    {
        using var selfSigned = TestCertificates.SelfSignedClient("CN=self-signed service");
        var token = _identity.Token(boundTo: selfSigned, now: _clock.GetUtcNow());
        var strict = await ApiAsync();
        using (var caller = strict.Caller(selfSigned))
        {
            AssertInvalidToken(await caller.GetOrdersAsync(token));
        }

        await strict.DisposeAsync();
        _api = null;
        var lenient = await ApiAsync(settings => settings["IdentityTokenValidation:AllowSelfSignedCertificates"] = "true");
        using var lenientCaller = lenient.Caller(selfSigned);

        Assert.Equal(HttpStatusCode.OK, (await lenientCaller.GetOrdersAsync(token)).StatusCode);
    }

    public static TheoryData<string> ForwardedForms => ["escaped-pem", "xfcc", "base64-der"];

    [Theory]
    [MemberData(nameof(ForwardedForms))]
    public async Task Get_BoundTokenWithItsCertificateForwardedByATrustedProxy_Accepted(string form)
    {
        // Arrange: the proxy (127.0.0.1) ended TLS and forwards the caller's certificate on plain HTTP, in one of the
        // forms the authority's parser reads (nginx, Envoy, base64 DER).
        var api = await ApiAsync(TrustedProxy("127.0.0.1"), requireBinding: true);
        using var proxy = new HttpClient { BaseAddress = api.PlainAddress };
        proxy.DefaultRequestHeaders.Add("X-Client-Cert", Forwarded(_orders, form));

        var response = await proxy.GetOrdersAsync(_identity.Token(boundTo: _orders, now: _clock.GetUtcNow()));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Get_CertificateForwardedFromAnAddressNotATrustedProxy_IgnoredSoTheBoundTokenIsRefused()
    {
        var api = await ApiAsync(TrustedProxy("10.0.0.5"), requireBinding: true);
        using var notTheProxy = new HttpClient { BaseAddress = api.PlainAddress };
        notTheProxy.DefaultRequestHeaders.Add("X-Client-Cert", Forwarded(_orders, "escaped-pem"));

        var response = await notTheProxy.GetOrdersAsync(_identity.Token(boundTo: _orders, now: _clock.GetUtcNow()));

        AssertInvalidToken(response);
    }

    [Fact]
    public async Task Get_ForwardedXfccWhoseHashIsNotItsCert_IgnoredSoTheBoundTokenIsRefused()
    {
        // Arrange: an XFCC element whose Hash is another certificate's (the authority's rule: Hash must be Cert's).
        var api = await ApiAsync(TrustedProxy("127.0.0.1"), requireBinding: true);
        using var proxy = new HttpClient { BaseAddress = api.PlainAddress };
        var header = $"Hash={Convert.ToHexStringLower(SHA256.HashData(_billing.RawData))};Cert=\"{EscapedPem(_orders)}\"";
        proxy.DefaultRequestHeaders.Add("X-Client-Cert", header);

        var response = await proxy.GetOrdersAsync(_identity.Token(boundTo: _orders, now: _clock.GetUtcNow()));

        // Assert: refused, and the log says why without the header's content.
        AssertInvalidToken(response);
        Assert.Contains(api.Log.Lines, l => l.Message.Contains("XFCC Hash that is not the SHA-256 of its Cert", StringComparison.Ordinal));
        Assert.DoesNotContain(api.Log.Lines, l => l.Message.Contains(Convert.ToBase64String(_orders.RawData)[..40], StringComparison.Ordinal));
    }

    private static Action<Dictionary<string, string?>> TrustedProxy(string address) => settings =>
    {
        settings["IdentityTokenValidation:TrustedProxies:0"] = address;
        settings["IdentityTokenValidation:ForwardedCertificateHeader"] = "X-Client-Cert";
    };

    private static string EscapedPem(X509Certificate2 certificate) => Uri.EscapeDataString(certificate.ExportCertificatePem() + "\n");

    private static string Forwarded(X509Certificate2 certificate, string form) => form switch
    {
        "escaped-pem" => EscapedPem(certificate),
        "xfcc" => $"By=spiffe://example.test/orders-api;Hash={Convert.ToHexStringLower(SHA256.HashData(certificate.RawData))};"
            + $"Cert=\"{EscapedPem(certificate)}\";Subject=\"CN=orders.us,O=Example\";URI=",
        "base64-der" => Convert.ToBase64String(certificate.RawData),
        _ => throw new ArgumentOutOfRangeException(nameof(form)),
    };

    public static TheoryData<string> WrongTokens => ["audience", "issuer", "typ", "expired", "signature", "unknown-key", "hs256"];

    [Theory]
    [MemberData(nameof(WrongTokens))]
    public async Task Get_TokenWrongInOneRespect_Refused401InvalidToken(string wrong)
    {
        var api = await ApiAsync();
        using var caller = api.Caller(_orders);
        var now = _clock.GetUtcNow();
        var token = wrong switch
        {
            "audience" => _identity.Token(boundTo: _orders, now: now, audience: "https://billing.eu.example"),
            "issuer" => _identity.Token(boundTo: _orders, now: now, issuer: "https://impostor.example/"),
            // RFC 9068 §4: an ID token (typ JWT) signed by the same key is not an access token.
            "typ" => _identity.Token(boundTo: _orders, now: now, type: "JWT"),
            "expired" => _identity.Token(boundTo: _orders, now: now.AddMinutes(-20), expires: now.AddMinutes(-5)),
            // Signed by a key of the same kid that Identity never published.
            "signature" => _identity.Token(boundTo: _orders, now: now,
                key: new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)), kid: _identity.Signing.Kid),
            "unknown-key" => _identity.Token(boundTo: _orders, now: now,
                key: new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)), kid: "never-published"),
            // The published RSA modulus used as an HMAC secret: an algorithm-confusion forgery.
            "hs256" => _identity.Token(boundTo: _orders, now: now, key: new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32)) { KeyId = "rs-1" },
                algorithm: SecurityAlgorithms.HmacSha256),
            _ => throw new ArgumentOutOfRangeException(nameof(wrong)),
        };

        var response = await caller.GetOrdersAsync(token);

        AssertInvalidToken(response);
    }

    [Fact]
    public async Task Get_NoToken_Refused401WithoutAnErrorCode()
    {
        var api = await ApiAsync();
        using var caller = api.Caller(_orders);

        var response = await caller.GetAsync("orders");

        // RFC 6750 §3.1: a request without credentials gets no error code.
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().ToString());
    }

    [Fact]
    public async Task Get_RepeatedTokenAfterItExpired_Refused()
    {
        var api = await ApiAsync();
        using var caller = api.Caller(_orders);
        var token = _identity.Token(boundTo: _orders, now: _clock.GetUtcNow(), expires: _clock.GetUtcNow().AddMinutes(5));
        Assert.Equal(HttpStatusCode.OK, (await caller.GetOrdersAsync(token)).StatusCode);

        _clock.Advance(TimeSpan.FromMinutes(7)); // past exp + the 60 s skew

        AssertInvalidToken(await caller.GetOrdersAsync(token));
    }

    [Fact]
    public async Task Get_TokenSignedWithARotatedKey_AcceptedAfterOneKeyFetch()
    {
        var api = await ApiAsync();
        using var caller = api.Caller(_orders);
        var fetchesBefore = _identity.JwksRequests;
        _identity.Rotate();

        var first = await caller.GetOrdersAsync(_identity.Token(boundTo: _orders, now: _clock.GetUtcNow()));
        var second = await caller.GetOrdersAsync(_identity.Token(boundTo: _orders, now: _clock.GetUtcNow()));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(fetchesBefore + 1, _identity.JwksRequests);
    }

    [Fact]
    public async Task Get_ManyTokensWithUnknownKeys_FetchTheKeysAtMostOncePerInterval()
    {
        var api = await ApiAsync();
        using var caller = api.Caller(_orders);
        var fetchesBefore = _identity.JwksRequests;

        for (var i = 0; i < 20; i++)
        {
            var forged = _identity.Token(boundTo: _orders, now: _clock.GetUtcNow(),
                key: new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)), kid: "unknown-" + i);
            AssertInvalidToken(await caller.GetOrdersAsync(forged));
        }

        Assert.Equal(fetchesBefore + 1, _identity.JwksRequests);
    }

    [Fact]
    public async Task Get_IdentityDown_ValidatesFromKnownKeysUntilTheStalenessBoundThenRefuses()
    {
        // Arrange: keys fetched at start; then Identity goes away.
        var api = await ApiAsync(settings => settings["IdentityTokenValidation:MaxKeyStaleness"] = "02:00:00");
        using var caller = api.Caller(_orders);
        _identity.Down = true;

        // Act + Assert: within the bound, tokens keep being accepted.
        _clock.Advance(TimeSpan.FromMinutes(119));
        Assert.Equal(HttpStatusCode.OK, (await caller.GetOrdersAsync(_identity.Token(boundTo: _orders, now: _clock.GetUtcNow()))).StatusCode);

        // Past it, refused, and the log says why once.
        _clock.Advance(TimeSpan.FromMinutes(2));
        AssertInvalidToken(await caller.GetOrdersAsync(_identity.Token(boundTo: _orders, now: _clock.GetUtcNow())));
        AssertInvalidToken(await caller.GetOrdersAsync(_identity.Token(boundTo: _orders, now: _clock.GetUtcNow())));
        var stale = api.Log.Lines.Where(l => l.Level == LogLevel.Error && l.Message.Contains("MaxKeyStaleness", StringComparison.Ordinal)).ToList();
        Assert.Single(stale);
        Assert.Contains("every access token is refused", stale[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_IdentityDownWithAKeyCacheFile_StartsAndValidates()
    {
        // Arrange: a first run fetches the keys and persists them.
        var cacheFile = Path.Combine(_directory, "keys", "identity-keys.json");
        void WithCache(Dictionary<string, string?> settings) => settings["IdentityTokenValidation:KeyCacheFile"] = cacheFile;
        await (await ApiAsync(WithCache)).DisposeAsync();
        _api = null;
        Assert.True(File.Exists(cacheFile));

        // Act: Identity is down when the service starts again.
        _identity.Down = true;
        var api = await ApiAsync(WithCache);
        using var caller = api.Caller(_orders);

        // Assert
        Assert.Equal(HttpStatusCode.OK, (await caller.GetOrdersAsync(_identity.Token(boundTo: _orders, now: _clock.GetUtcNow()))).StatusCode);
    }

    [Fact]
    public async Task Start_IdentityDownWithoutAKeyCacheFile_FailsNamingTheTimeout()
    {
        _identity.Down = true;

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            ApiAsync(settings => settings["IdentityTokenValidation:StartupTimeout"] = "00:00:02"));

        Assert.Contains("StartupTimeout", error.Message, StringComparison.Ordinal);
        Assert.Contains("KeyCacheFile", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Handshake_CertificateNamingIssuerAndRevocationUrls_ApiFetchesNoneAndRefusesTheCall()
    {
        // Arrange: a certificate of a CA the API does not trust whose issuer, OCSP and CRL addresses are a local web
        // server: any caller can present one during the TLS handshake, before any token is looked at.
        using var web = new CountingWebServer();
        using var unknownCa = TestCertificates.Authority("CN=Unknown CA");
        using var certificate = TestCertificates.ClientPointingAt(unknownCa, web.Url);
        var api = await ApiAsync();
        using var caller = api.OfflineCaller(certificate);

        // Act
        using var response = await caller.GetAsync("orders");

        // Assert: no token, 401; and the API never called the addresses the caller wrote into its certificate
        // (Kestrel's defaults build a chain at the TLS layer with online revocation and downloads).
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Empty(web.Requests);
    }

    [Fact]
    public async Task Get_TokenBoundToACertificateOfAnUnknownIssuerNamingUrls_CertificateCheckFetchesNoneAndRefuses()
    {
        // Arrange: a token bound to a certificate whose issuer the API does not know and whose issuer, OCSP and CRL
        // addresses are a local web server (the thumbprint matches, so the chain check runs).
        using var web = new CountingWebServer();
        using var unknownCa = TestCertificates.Authority("CN=Unknown CA");
        using var certificate = TestCertificates.ClientPointingAt(unknownCa, web.Url);
        var api = await ApiAsync();
        using var caller = api.OfflineCaller(certificate);

        // Act
        var response = await caller.GetOrdersAsync(_identity.Token(boundTo: certificate, now: _clock.GetUtcNow()));

        // Assert: refused, and the chain check looked for the issuer only in what the API holds.
        AssertInvalidToken(response);
        Assert.Empty(web.Requests);
    }

    [Fact]
    public async Task Get_ForwardedCertificateOfAnUnknownIssuerNamingUrls_CertificateCheckFetchesNoneAndRefuses()
    {
        using var web = new CountingWebServer();
        using var unknownCa = TestCertificates.Authority("CN=Unknown CA");
        using var certificate = TestCertificates.ClientPointingAt(unknownCa, web.Url);
        var api = await ApiAsync(TrustedProxy("127.0.0.1"), requireBinding: true);
        using var proxy = new HttpClient { BaseAddress = api.PlainAddress };
        proxy.DefaultRequestHeaders.Add("X-Client-Cert", Forwarded(certificate, "escaped-pem"));

        var response = await proxy.GetOrdersAsync(_identity.Token(boundTo: certificate, now: _clock.GetUtcNow()));

        AssertInvalidToken(response);
        Assert.Empty(web.Requests);
    }

    [Fact]
    public async Task Get_CertificateNamedAsItsOwnIssuerButSignedByAnother_RefusedWhereSelfSignedAllowedAndNothingFetched()
    {
        // Arrange: subject = issuer name, so the certificate passes for self-signed by its names, but another key
        // signed it: its issuer is missing, not itself. Self-signed callers are allowed.
        using var web = new CountingWebServer();
        using var sameName = TestCertificates.Authority("CN=orders.eu, O=Example");
        using var certificate = TestCertificates.ClientPointingAt(sameName, web.Url, subject: "CN=orders.eu, O=Example");
        var api = await ApiAsync(settings => settings["IdentityTokenValidation:AllowSelfSignedCertificates"] = "true");
        using var caller = api.OfflineCaller(certificate);

        var response = await caller.GetOrdersAsync(_identity.Token(boundTo: certificate, now: _clock.GetUtcNow()));

        // Assert: a chain that cannot be completed from what the API holds is no self-signed certificate.
        AssertInvalidToken(response);
        Assert.Empty(web.Requests);
    }

    [Fact]
    public async Task Get_CertificateOfAnIntermediateInTheTrustedBundleNamingUrls_AcceptedWithoutFetching()
    {
        // Arrange: TrustedCaFile holds the root and its intermediate; the caller's certificate, issued by the
        // intermediate, names addresses that must not be needed.
        using var web = new CountingWebServer();
        using var intermediate = TestCertificates.IntermediateAuthority(_ca, "CN=Region Services Issuing CA");
        await File.WriteAllTextAsync(CaFile, _ca.ExportCertificatePem() + "\n" + intermediate.ExportCertificatePem());
        using var certificate = TestCertificates.ClientPointingAt(intermediate, web.Url);
        var api = await ApiAsync(requireBinding: true);
        using var caller = api.OfflineCaller(certificate);

        var response = await caller.GetOrdersAsync(_identity.Token(boundTo: certificate, now: _clock.GetUtcNow()));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(web.Requests);
    }

    [Fact]
    public async Task Start_CallerCertificateRevocationCheckedOnline_RefusesToStart()
    {
        // Online revocation would fetch the CRL and OCSP addresses callers write into their certificates (0067).
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => ApiAsync(configure: services =>
            services.PostConfigure<Microsoft.AspNetCore.Authentication.Certificate.CertificateAuthenticationOptions>(
                Identity.Region.Validation.IdentityBearerDefaults.CertificateScheme, o => o.RevocationMode = X509RevocationMode.Online)));

        Assert.Contains("RevocationMode must not be Online", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_NoAudience_RefusesToStartNamingTheKey()
    {
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() =>
            ApiAsync(settings => settings["IdentityTokenValidation:Audiences:0"] = null));

        Assert.Contains("IdentityTokenValidation:Audiences", error.Message, StringComparison.Ordinal);
    }

    private async Task<RegionApiHost> ApiAsync(
        Action<Dictionary<string, string?>>? change = null, bool requireBinding = false, Action<IServiceCollection>? configure = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["IdentityTokenValidation:Authority"] = _identity.Authority.AbsoluteUri,
            ["IdentityTokenValidation:Audiences:0"] = FakeAuthority.Audience,
            ["IdentityTokenValidation:TrustedCaFile"] = CaFile,
            ["IdentityTokenValidation:RequireCertificateBinding"] = requireBinding ? "true" : "false",
        };
        change?.Invoke(settings);
        _api = await RegionApiHost.StartAsync(_clock, settings, _serverCertificate, configure);
        return _api;
    }
}
