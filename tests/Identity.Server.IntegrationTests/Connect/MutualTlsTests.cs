using System.Net;
using System.Net.Http.Json;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Identity.Core.Data;
using Identity.Region.Tests.Infrastructure;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.IntegrationTests.Connect;

/// <summary>
/// Certificate client authentication (RFC 8705): the real server on Kestrel with its mTLS port, certificates made here
/// (a test CA, client certificates, a self-signed one), clients over TLS presenting them.
/// </summary>
public sealed class MutualTlsTests(MutualTlsTests.MutualTlsServer server) : IClassFixture<MutualTlsTests.MutualTlsServer>
{
    [Fact]
    public async Task ClientCredentials_PkiCertificateWithTheRegisteredSubject_TokenBoundToThatCertificate()
    {
        // Act
        var (status, body) = await server.TokenAsync(server.Mtls, "svc-pki", server.PkiClient);

        // Assert
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        Assert.Equal(TestCertificates.Thumbprint(server.PkiClient), Confirmation(body));
    }

    [Fact]
    public async Task ClientCredentials_PkiCertificateWithTheRegisteredSanDns_TokenBoundToThatCertificate()
    {
        var (status, body) = await server.TokenAsync(server.Mtls, "svc-pki-san", server.SanClient);

        Assert.True(status == HttpStatusCode.OK, body.ToString());
        Assert.Equal(TestCertificates.Thumbprint(server.SanClient), Confirmation(body));
    }

    [Fact]
    public async Task ClientCredentials_PkiCertificateWithTheRegisteredSanUri_TokenBoundToThatCertificate()
    {
        var (status, body) = await server.TokenAsync(server.Mtls, "svc-pki-uri", server.Certificate("uri")!);

        Assert.True(status == HttpStatusCode.OK, body.ToString());
        Assert.Equal(TestCertificates.Thumbprint(server.Certificate("uri")!), Confirmation(body));
    }

    [Fact]
    public async Task ClientCredentials_SecondConnectionOfAClientThatResumesSessions_StillAuthenticated()
    {
        // Arrange: one handler that may resume its TLS session (the default), made to open a new connection per request.
        using var client = server.Client(server.Mtls, server.PkiClient);

        // Act
        var first = await server.TokenAsync(client, "svc-pki");
        var second = await server.TokenAsync(client, "svc-pki");

        // Assert: the certificate reached the server both times, so both tokens are bound to it.
        Assert.True(first.Status == HttpStatusCode.OK, first.Body.ToString());
        Assert.True(second.Status == HttpStatusCode.OK, second.Body.ToString());
        Assert.Equal(TestCertificates.Thumbprint(server.PkiClient), Confirmation(second.Body));
    }

    [Fact]
    public async Task ClientCredentials_SelfSignedCertificateInTheClientsJwks_TokenBoundToThatCertificate()
    {
        var (status, body) = await server.TokenAsync(server.Mtls, "svc-self", server.SelfSigned);

        Assert.True(status == HttpStatusCode.OK, body.ToString());
        Assert.Equal(TestCertificates.Thumbprint(server.SelfSigned), Confirmation(body));
    }

    public static TheoryData<string, string, string> Refusals => new()
    {
        { "svc-pki", "expired", "expired" },
        { "svc-pki", "not-yet-valid", "not_yet_valid" },
        { "svc-pki", "other-ca", "untrusted_ca" },
        { "svc-pki", "self-signed", "another_client" },
        { "svc-pki", "unregistered-self-signed", "untrusted_ca" },
        { "svc-pki", "wrong-subject", "name_mismatch" },
        { "svc-pki", "other-client", "another_client" },
        { "svc-self", "other-self-signed", "not_registered" },
        { "svc-self", "self-signed-expired", "expired" },
        { "svc-self", "wrong-subject", "not_registered" },
        { "svc-pki-uri", "other-client", "another_client" },
        { "svc-pki-san", "uri", "another_client" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task ClientCredentials_CertificateNotTheClients_InvalidClient401AuditedAndCounted(string clientId, string certificate, string reason)
    {
        // Arrange
        var before = await server.FailuresAsync(clientId, reason);
        using var refusals = server.CountRefusals();

        // Act
        var (status, body) = await server.TokenAsync(server.Mtls, clientId, server.Certificate(certificate));

        // Assert: RFC 6749 §5.2, a token.failed audit row naming the reason, and the counter tagged with it.
        Assert.True(status == HttpStatusCode.Unauthorized, body.ToString());
        Assert.Equal("invalid_client", body.GetProperty("error").GetString());
        Assert.Equal(before + 1, await server.FailuresAsync(clientId, reason));
        Assert.True(refusals.Of(reason) >= 1, $"no {reason} counted: {refusals}");
    }

    public static TheoryData<string, string, string, string> IntrospectionAndRevocationRefusals()
    {
        var data = new TheoryData<string, string, string, string>();
        foreach (var endpoint in new[] { "introspection", "revocation" })
        {
            foreach (var refusal in Refusals)
            {
                data.Add(endpoint, (string)refusal[0], (string)refusal[1], (string)refusal[2]);
            }

            // On the main port no certificate is asked for; a certificate client sending a secret instead.
            data.Add(endpoint, "svc-pki", "main:pki", "no_certificate");
            data.Add(endpoint, "svc-self", "main:secret", "method_not_registered");
            data.Add(endpoint, "svc-pki", "secret", "method_not_registered");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(IntrospectionAndRevocationRefusals))]
    public async Task IntrospectionAndRevocation_CertificateRefused_InvalidClient401AuditedAndCounted(
        string endpoint, string clientId, string certificate, string reason)
    {
        // Arrange: the mTLS aliases of RFC 7662 and RFC 7009 (RFC 8705 §5), or the main port.
        var before = await server.FailuresAsync(clientId, reason, endpoint);
        using var refusals = server.CountRefusals();
        var main = certificate.StartsWith("main:", StringComparison.Ordinal);
        var name = main ? certificate[5..] : certificate;

        // Act
        var (status, body) = await server.IntrospectOrRevokeAsync(main ? server.Main : server.Mtls, endpoint, clientId,
            name == "secret" ? server.PkiClient : server.Certificate(name), secret: name == "secret" ? "a-secret-it-never-had-0123456789" : null);

        // Assert: RFC 7662 §2.1 and RFC 7009 §2.1 authenticate the client as the token endpoint does, so a refused
        // certificate is RFC 6749 §5.2 invalid_client (401), audited with its reason and endpoint and counted.
        Assert.True(status == HttpStatusCode.Unauthorized, body.ToString());
        Assert.Equal("invalid_client", body.GetProperty("error").GetString());
        Assert.Equal(before + 1, await server.FailuresAsync(clientId, reason, endpoint));
        Assert.True(refusals.Of(reason) >= 1, $"no {reason} counted: {refusals}");
    }

    [Theory]
    [InlineData("introspection")]
    [InlineData("revocation")]
    public async Task IntrospectionAndRevocation_CertificateClientWithItsCertificate_Answered(string endpoint)
    {
        var (status, body) = await server.IntrospectOrRevokeAsync(server.Mtls, endpoint, "svc-pki", server.PkiClient);

        // RFC 7662 §2.2: an unknown token is inactive; RFC 7009 §2.2: revoking an unknown token is 200.
        Assert.True(status == HttpStatusCode.OK, body.ToString());
    }

    [Fact]
    public async Task MainPort_CertificateClientWithItsCertificate_NeverAskedSoInvalidClientNoCertificate()
    {
        // Arrange
        var before = await server.FailuresAsync("svc-pki", "no_certificate");
        using var refusals = server.CountRefusals();

        // Act: the same request on the main (browser) port over TLS, with the right certificate at hand: the client
        // sends it whenever the server asks (it does on the mTLS port, the tests above).
        var (status, body) = await server.TokenAsync(server.Main, "svc-pki", server.PkiClient);

        // Assert: the handshake never asked for it, so no certificate reached the server: a certificate client
        // without its certificate is not authenticated (RFC 6749 §5.2), audited and counted as no_certificate.
        Assert.True(status == HttpStatusCode.Unauthorized, body.ToString());
        Assert.Equal("invalid_client", body.GetProperty("error").GetString());
        Assert.Equal(before + 1, await server.FailuresAsync("svc-pki", "no_certificate"));
        Assert.True(refusals.Of("no_certificate") >= 1, refusals.ToString());
    }

    [Fact]
    public async Task MainPort_CertificateClientWithASecretOnly_InvalidClientMethodNotRegistered()
    {
        // A client registered for self_signed_tls_client_auth authenticates with its certificate or not at all.
        var before = await server.FailuresAsync("svc-self", "method_not_registered");
        using var client = server.Client(server.Main, null);
        using var response = await client.PostFormAsync("/connect/token",
            [new("grant_type", "client_credentials"), new("scope", "api.read")], ("svc-self", "a-secret-it-never-had-0123456789"));

        var body = await ResponseAssert.StatusAsync(response, HttpStatusCode.Unauthorized);
        Assert.Equal("invalid_client", body.GetProperty("error").GetString());
        Assert.Equal(before + 1, await server.FailuresAsync("svc-self", "method_not_registered"));
    }

    public static TheoryData<string, string, string, string> OtherMethods => new()
    {
        // The key of svc-self's JWKS is its self-signed certificate's, so an assertion signed with it (no kid: the JWKS
        // names none) is one private_key_jwt would accept; svc-self registered self_signed_tls_client_auth.
        { "svc-self", "mtls", "self-signed", "assertion" },
        { "svc-self", "main", "none", "assertion" },
        { "svc-self", "mtls", "self-signed", "secret" },
        { "svc-pki", "mtls", "pki", "secret" },
        { "svc-pki", "main", "none", "secret" },
    };

    [Theory]
    [MemberData(nameof(OtherMethods))]
    public async Task ClientCredentials_CertificateClientAuthenticatingAnotherWay_InvalidClientMethodNotRegistered(
        string clientId, string port, string certificate, string credential)
    {
        // Arrange
        var before = await server.FailuresAsync(clientId, "method_not_registered");
        using var refusals = server.CountRefusals();
        using var client = server.Client(port == "mtls" ? server.Mtls : server.Main, server.Certificate(certificate));
        List<KeyValuePair<string, string>> form = [new("grant_type", "client_credentials"), new("client_id", clientId), new("scope", "api.read")];
        form.AddRange(credential == "assertion"
            ?
            [
                new("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                new("client_assertion", TokenClient.CreateUntypedClientAssertion(clientId, server.SelfSigned.GetECDsaPrivateKey()!,
                    ServerFixture<SqliteTestDatabase>.Issuer, kid: null)),
            ]
            : [new("client_secret", "a-secret-it-never-had-0123456789")]);

        // Act
        using var response = await client.PostFormAsync("/connect/token", form);

        // Assert: RFC 8705 §2 and RFC 7591 §2 (token_endpoint_auth_method): the server authenticates a client with the
        // method it registered and no other, so a secret or an assertion is refused whatever else came with it,
        // as RFC 6749 §5.2 invalid_client, audited and counted with the reason.
        var body = await ResponseAssert.StatusAsync(response, HttpStatusCode.Unauthorized);
        Assert.Equal("invalid_client", body.GetProperty("error").GetString());
        Assert.Equal(before + 1, await server.FailuresAsync(clientId, "method_not_registered"));
        Assert.True(refusals.Of("method_not_registered") >= 1, refusals.ToString());
    }

    [Fact]
    public async Task MainPort_TlsHandshake_NoCertificateRequested()
    {
        // Act: a handshake with a certificate at hand, on each port; SslStream sends it only on a CertificateRequest.
        var main = await server.HandshakeAsync(server.Main, server.PkiClient);
        var mtls = await server.HandshakeAsync(server.Mtls, server.PkiClient);

        // Assert: the browser port never asked (browsers are never prompted); the mTLS one did and got it.
        Assert.False(main, "the main port asked for a client certificate");
        Assert.True(mtls, "the mTLS port did not ask for a client certificate");
    }

    [Fact]
    public async Task MtlsPort_TlsConnectionWithoutCertificate_Refused()
    {
        // Act: TLS to the mTLS port with no certificate to give, then an HTTP request over it.
        var error = await Record.ExceptionAsync(() => server.HandshakeAsync(server.Mtls, null, sendRequest: true));

        // Assert: the server ended the handshake (TLS 1.3 reports it on the first read); no HTTP answer came.
        Assert.True(error is IOException or System.Security.Authentication.AuthenticationException, error?.ToString() ?? "an HTTP response came back");
    }

    [Fact]
    public async Task AuthorizationCodeAndRefresh_ConfidentialCertificateClientOverMtls_AccessTokensBound()
    {
        // Arrange: a person signs in for the tls_client_auth web client; the client redeems the code over mTLS.
        var (code, verifier) = await server.AuthorizeAsync("web-pki");
        using var client = server.Client(server.Mtls, server.PkiClient);

        // Act
        var tokens = await ResponseAssert.StatusAsync(await server.RedeemAsync(client, "web-pki", code, verifier), HttpStatusCode.OK);
        var refreshed = await ResponseAssert.StatusAsync(await server.RefreshAsync(client, "web-pki", tokens), HttpStatusCode.OK);

        // Assert: RFC 8705 §3.1, for the code flow and the refresh flow alike.
        Assert.Equal(TestCertificates.Thumbprint(server.PkiClient), Confirmation(tokens));
        Assert.Equal(TestCertificates.Thumbprint(server.PkiClient), Confirmation(refreshed));
    }

    [Fact]
    public async Task Refresh_PublicClientsTokenObtainedOverMtls_OnlyWithTheSameCertificate()
    {
        // Arrange: a public client gets its refresh token over mTLS with a self-signed certificate of its own.
        var (code, verifier) = await server.AuthorizeAsync("spa-public");
        using var holder = server.Client(server.Mtls, server.SelfSigned);
        var tokens = await ResponseAssert.StatusAsync(await server.RedeemAsync(holder, "spa-public", code, verifier), HttpStatusCode.OK);
        using var withoutCertificate = server.Client(server.Main, null);
        using var withAnother = server.Client(server.Mtls, server.Certificate("other-self-signed"));

        // Act: the refresh token presented by someone without the certificate, by someone with another, then by its holder.
        using var bare = await server.RefreshAsync(withoutCertificate, "spa-public", tokens);
        using var other = await server.RefreshAsync(withAnother, "spa-public", tokens);
        using var same = await server.RefreshAsync(holder, "spa-public", tokens);

        // Assert: RFC 8705 §4: the token is bound to the certificate it was issued over (RFC 6749 §5.2 invalid_grant).
        Assert.Equal(TestCertificates.Thumbprint(server.SelfSigned), Confirmation(tokens));
        Assert.Equal("invalid_grant", (await ResponseAssert.StatusAsync(bare, HttpStatusCode.BadRequest)).GetProperty("error").GetString());
        Assert.Equal("invalid_grant", (await ResponseAssert.StatusAsync(other, HttpStatusCode.BadRequest)).GetProperty("error").GetString());
        var refreshed = await ResponseAssert.StatusAsync(same, HttpStatusCode.OK);
        Assert.Equal(TestCertificates.Thumbprint(server.SelfSigned), Confirmation(refreshed));
    }

    [Fact]
    public async Task Discovery_MtlsPortConfigured_AdvertisesAliasesBindingAndMethods()
    {
        // Act
        using var client = server.Client(server.Main, null);
        var document = await client.GetFromJsonAsync<JsonElement>("/.well-known/openid-configuration");

        // Assert: RFC 8705 §5 and §3.3.
        var aliases = document.GetProperty("mtls_endpoint_aliases");
        Assert.Equal(new Uri(server.Mtls, "connect/token").AbsoluteUri, aliases.GetProperty("token_endpoint").GetString());
        Assert.Equal(new Uri(server.Mtls, "connect/introspect").AbsoluteUri, aliases.GetProperty("introspection_endpoint").GetString());
        Assert.Equal(new Uri(server.Mtls, "connect/revoke").AbsoluteUri, aliases.GetProperty("revocation_endpoint").GetString());
        Assert.True(document.GetProperty("tls_client_certificate_bound_access_tokens").GetBoolean());
        var methods = document.GetProperty("token_endpoint_auth_methods_supported").EnumerateArray().Select(m => m.GetString()).ToList();
        Assert.Contains("tls_client_auth", methods);
        Assert.Contains("self_signed_tls_client_auth", methods);
    }

    [Fact]
    public async Task AdminApi_TlsClientAuthClientRegistered_ShownAndGetsABoundTokenOverMtls()
    {
        // Arrange
        using var admin = await server.AdminAsync();
        var clientId = "api-pki-" + Guid.NewGuid().ToString("n")[..8];

        // Act
        var created = await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Post, "/admin/v1/clients",
            $$"""{"clientId":"{{clientId}}","authenticationMethod":"tls_client_auth","tlsClientAuthSanDns":"reports.eu.example","grantTypes":["client_credentials"],"scopes":["api.read"]}"""),
            HttpStatusCode.Created);
        var (status, body) = await server.TokenAsync(server.Mtls, clientId, server.Certificate("api-registered"));

        // Assert: no secret was generated, the view says how the client authenticates, and the token is bound.
        Assert.Equal(JsonValueKind.Null, created.GetProperty("clientSecret").ValueKind);
        Assert.Equal("tls_client_auth", created.GetProperty("client").GetProperty("authenticationMethod").GetString());
        Assert.Equal("reports.eu.example", created.GetProperty("client").GetProperty("tlsClientAuthSanDns").GetString());
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        Assert.Equal(TestCertificates.Thumbprint(server.Certificate("api-registered")!), Confirmation(body));
    }

    [Fact]
    public async Task AdminApi_SelfSignedClientRegistered_ShownAndGetsABoundTokenOverMtls()
    {
        // Arrange
        using var admin = await server.AdminAsync();
        var clientId = "api-self-" + Guid.NewGuid().ToString("n")[..8];
        var certificate = server.Certificate("api-self-signed")!;

        // Act
        var created = await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Post, "/admin/v1/clients",
            $$"""{"clientId":"{{clientId}}","authenticationMethod":"self_signed_tls_client_auth","jwks":{{MutualTlsServer.Jwks(certificate)}},"grantTypes":["client_credentials"],"scopes":["api.read"]}"""),
            HttpStatusCode.Created);
        var (status, body) = await server.TokenAsync(server.Mtls, clientId, certificate);

        // Assert
        Assert.Equal("self_signed_tls_client_auth", created.GetProperty("client").GetProperty("authenticationMethod").GetString());
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        Assert.Equal(TestCertificates.Thumbprint(certificate), Confirmation(body));
    }

    public static TheoryData<string, string> BadRegistrations => new()
    {
        // RFC 8705 §2.1.2: exactly one name.
        { "authenticationMethod", """{"authenticationMethod":"tls_client_auth","grantTypes":["client_credentials"]}""" },
        { "authenticationMethod", """{"authenticationMethod":"tls_client_auth","tlsClientAuthSubjectDn":"CN=a","tlsClientAuthSanDns":"a.example","grantTypes":["client_credentials"]}""" },
        { "tlsClientAuthSubjectDn", """{"authenticationMethod":"tls_client_auth","tlsClientAuthSubjectDn":"not a name","grantTypes":["client_credentials"]}""" },
        { "tlsClientAuthSanUri", """{"authenticationMethod":"tls_client_auth","tlsClientAuthSanUri":"relative/path","grantTypes":["client_credentials"]}""" },
        { "authenticationMethod", """{"authenticationMethod":"private_key_jwt","tlsClientAuthSanDns":"a.example","grantTypes":["client_credentials"],"jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}}""" },
        // RFC 8705 §2.2: the certificate is in the JWKS (x5c).
        { "jwks", """{"authenticationMethod":"self_signed_tls_client_auth","grantTypes":["client_credentials"],"jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}}""" },
        { "jwks", """{"authenticationMethod":"self_signed_tls_client_auth","grantTypes":["client_credentials"]}""" },
    };

    [Theory]
    [MemberData(nameof(BadRegistrations))]
    public async Task AdminApi_CertificateClientMisregistered_ProblemNamingTheField(string field, string json)
    {
        using var admin = await server.AdminAsync();

        var problem = await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Post, "/admin/v1/clients", json), HttpStatusCode.BadRequest);

        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
    }

    public static TheoryData<string, string, string> BadDeclarations => new()
    {
        // RFC 8705 §2.1.2: exactly one name.
        { "TlsClientAuthSanDns", "orders.eu.example", "set one of TlsClientAuthSubjectDn, TlsClientAuthSanDns and TlsClientAuthSanUri" },
        { "TokenEndpointAuthMethod", "private_key_jwt", "go with tls_client_auth only" },
        { "Mtls:Port", "", "certificate authentication needs Mtls:Port" },
        { "Mtls:TrustedCaFile", "", "tls_client_auth needs Mtls:TrustedCaFile" },
        { "Mtls:CertificateFile", "/nonexistent/server.pem", "Mtls:CertificateFile/CertificateKeyFile cannot be read" },
    };

    [Theory]
    [MemberData(nameof(BadDeclarations))]
    public void Start_CertificateClientMisdeclared_RefusesToStartNamingTheKey(string key, string value, string message)
    {
        // Arrange: svc-pki (a subject DN) with one setting changed; "" removes a setting.
        var host = server.StartServer(settings =>
        {
            if (key.StartsWith("Mtls:", StringComparison.Ordinal))
            {
                settings[key] = value.Length == 0 ? null : value;
            }
            else
            {
                settings[$"Oidc:Clients:20:{key}"] = value;
            }
        });

        // Act
        var error = Record.Exception(() => host.Start());

        // Assert
        Assert.IsType<Microsoft.Extensions.Options.OptionsValidationException>(error?.GetBaseException());
        Assert.Contains(message, error!.GetBaseException().Message, StringComparison.Ordinal);
    }

    internal static string? Confirmation(JsonElement tokenResponse)
    {
        var jwt = tokenResponse.GetProperty("access_token").GetString()!;
        var payload = JsonDocument.Parse(Base64UrlEncoder.Decode(jwt.Split('.')[1])).RootElement;
        return payload.GetProperty("cnf").GetProperty("x5t#S256").GetString();
    }

    /// <summary>One server with an mTLS port, and the certificates of the tests.</summary>
    public sealed class MutualTlsServer : IAsyncLifetime
    {
        private readonly ServerFixture<SqliteTestDatabase> _fixture = new();
        private readonly string _directory = Directory.CreateTempSubdirectory("mtls-").FullName;
        private readonly Dictionary<string, X509Certificate2> _certificates = [];
        private X509Certificate2 _serverCertificate = null!;
        private Action<Dictionary<string, string?>> _settings = _ => { };
        private IdentityServerHost _host = null!;

        public Uri Main { get; private set; } = null!;

        public Uri Mtls { get; private set; } = null!;

        /// <summary>Settings applied after this class's own (another test class's CAs and CRLs), before InitializeAsync.</summary>
        public Action<Dictionary<string, string?>> Extra { get; set; } = _ => { };

        public X509Certificate2 PkiClient => _certificates["pki"];

        public X509Certificate2 SanClient => _certificates["other-client"];

        public X509Certificate2 SelfSigned => _certificates["self-signed"];

        public X509Certificate2? Certificate(string name) => name == "none" ? null : _certificates[name];

        /// <summary>The server certificate of both ports (self-signed, for localhost), and its PEM file.</summary>
        public X509Certificate2 ServerTlsCertificate => _serverCertificate;

        public string ServerCertificateFile => Path.Combine(_directory, "server.pem");

        public async Task InitializeAsync()
        {
            await _fixture.InitializeAsync();
            var now = DateTimeOffset.UtcNow;
            using var ca = TestCertificates.Authority("CN=Identity Test Services CA");
            using var otherCa = TestCertificates.Authority("CN=Another CA");
            _certificates["pki"] = TestCertificates.Client(ca, "CN=orders.eu, O=Example");
            _certificates["pki-renewed"] = TestCertificates.Client(ca, "CN=orders.eu, O=Example", notAfter: now.AddDays(60));
            _certificates["expired"] = TestCertificates.Client(ca, "CN=orders.eu, O=Example", notAfter: now.AddDays(-1), notBefore: now.AddDays(-30));
            _certificates["not-yet-valid"] = TestCertificates.Client(ca, "CN=orders.eu, O=Example", notBefore: now.AddDays(1));
            _certificates["other-ca"] = TestCertificates.Client(otherCa, "CN=orders.eu, O=Example");
            _certificates["wrong-subject"] = TestCertificates.Client(ca, "CN=billing.eu, O=Example");
            _certificates["other-client"] = TestCertificates.Client(ca, "CN=inventory, O=Example", san: Dns("inventory.eu.example"));
            _certificates["uri"] = TestCertificates.Client(ca, "CN=shipping, O=Example", san: UriName("spiffe://example.test/shipping"));
            _certificates["api-registered"] = TestCertificates.Client(ca, "CN=reports, O=Example", san: Dns("reports.eu.example"));
            _certificates["api-self-signed"] = TestCertificates.SelfSignedClient("CN=api self-signed service");
            _certificates["self-signed"] = TestCertificates.SelfSignedClient("CN=self-signed service");
            _certificates["other-self-signed"] = TestCertificates.SelfSignedClient("CN=self-signed service");
            _certificates["unregistered-self-signed"] = TestCertificates.SelfSignedClient("CN=orders.eu, O=Example");
            _certificates["self-signed-expired"] = TestCertificates.SelfSignedClient("CN=self-signed service", now.AddDays(-30), now.AddDays(-1));
            _serverCertificate = TestCertificates.Server();

            var caFile = Path.Combine(_directory, "ca.pem");
            await File.WriteAllTextAsync(caFile, ca.ExportCertificatePem());
            var serverFile = ServerCertificateFile;
            var serverKeyFile = Path.Combine(_directory, "server.key");
            await File.WriteAllTextAsync(serverFile, _serverCertificate.ExportCertificatePem());
            await File.WriteAllTextAsync(serverKeyFile, _serverCertificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());

            var mainPort = TestPorts.Next();
            var mtlsPort = TestPorts.Next();
            Main = new Uri($"https://localhost:{mainPort}/");
            Mtls = new Uri($"https://localhost:{mtlsPort}/");
            _settings = settings =>
            {
                settings["Mtls:Port"] = mtlsPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
                settings["Mtls:CertificateFile"] = serverFile;
                settings["Mtls:CertificateKeyFile"] = serverKeyFile;
                settings["Mtls:TrustedCaFile"] = caFile;
                AddClient(settings, 20, "svc-pki", "TlsClientAuthSubjectDn", "CN=orders.eu,O=Example");
                AddClient(settings, 21, "svc-pki-san", "TlsClientAuthSanDns", "inventory.eu.example");
                AddClient(settings, 22, "svc-self", "Jwks", Jwks(SelfSigned, _certificates["self-signed-expired"]));
                settings["Oidc:Clients:22:TokenEndpointAuthMethod"] = "self_signed_tls_client_auth";
                AddClient(settings, 23, "svc-pki-uri", "TlsClientAuthSanUri", "spiffe://example.test/shipping");
                AddWebClient(settings, 24, "web-pki");
                settings["Oidc:Clients:24:TlsClientAuthSubjectDn"] = "CN=orders.eu,O=Example";
                AddWebClient(settings, 25, "spa-public");
                Extra(settings);
            };
            _host = StartServer();
            var mainCertificate = _serverCertificate;
            _host.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, mainPort, listen => listen.UseHttps(mainCertificate)));
            _host.StartServer();
        }

        /// <summary>A server with this class's settings, <paramref name="change"/> applied last; not started.</summary>
        public IdentityServerHost StartServer(Action<Dictionary<string, string?>>? change = null) =>
            _fixture.StartServer(settings =>
            {
                _settings(settings);
                change?.Invoke(settings);
            });

        internal static void AddClient(Dictionary<string, string?> settings, int index, string clientId, string key, string value)
        {
            settings[$"Oidc:Clients:{index}:ClientId"] = clientId;
            settings[$"Oidc:Clients:{index}:GrantTypes:0"] = "client_credentials";
            settings[$"Oidc:Clients:{index}:Scopes:0"] = "api.read";
            settings[$"Oidc:Clients:{index}:{key}"] = value;
        }

        private static void AddWebClient(Dictionary<string, string?> settings, int index, string clientId)
        {
            settings[$"Oidc:Clients:{index}:ClientId"] = clientId;
            settings[$"Oidc:Clients:{index}:GrantTypes:0"] = "authorization_code";
            settings[$"Oidc:Clients:{index}:GrantTypes:1"] = "refresh_token";
            settings[$"Oidc:Clients:{index}:Scopes:0"] = "openid";
            settings[$"Oidc:Clients:{index}:Scopes:1"] = "offline_access";
            settings[$"Oidc:Clients:{index}:Scopes:2"] = "api.read";
            settings[$"Oidc:Clients:{index}:RedirectUris:0"] = $"https://{clientId}.test/cb";
        }

        /// <summary>The fixture's person signs in for <paramref name="clientId"/> (code + PKCE); the code and its verifier.</summary>
        public async Task<(string Code, string Verifier)> AuthorizeAsync(string clientId)
        {
            var (verifier, challenge) = BrowserSession.Pkce();
            var browser = new BrowserSession(_fixture.Server);
            var callback = await browser.AuthorizeAsync(BrowserSession.AuthorizeUrl(clientId, $"https://{clientId}.test/cb", challenge,
                ("scope", "openid offline_access api.read")), ServerFixture<SqliteTestDatabase>.UserEmail, _fixture.UserPassword);
            return (BrowserSession.Query(callback)["code"], verifier);
        }

        public Task<HttpResponseMessage> RedeemAsync(HttpClient client, string clientId, string code, string verifier) =>
            client.PostFormAsync("/connect/token", [new("grant_type", "authorization_code"), new("client_id", clientId), new("code", code),
                new("code_verifier", verifier), new("redirect_uri", $"https://{clientId}.test/cb")]);

        public Task<HttpResponseMessage> RefreshAsync(HttpClient client, string clientId, JsonElement tokens) =>
            client.PostFormAsync("/connect/token", [new("grant_type", "refresh_token"), new("client_id", clientId),
                new("refresh_token", tokens.GetProperty("refresh_token").GetString()!)]);

        /// <summary>The admin API on the main port, as the declared platform-admin client.</summary>
        public async Task<HttpClient> AdminAsync()
        {
            var client = Client(Main, null);
            var body = await ResponseAssert.StatusAsync(await client.ClientCredentialsAsync("platform-admin", _fixture.BasicSecret, "identity.admin"), HttpStatusCode.OK);
            client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", body.GetProperty("access_token").GetString());
            return client;
        }

        public Task<int> FailuresAsync(string clientId, string reason, string endpoint = "token") =>
            FailuresAsync(_fixture.Server.Services, clientId, reason, endpoint);

        /// <summary>
        /// The token.failed audit rows of <paramref name="clientId"/> refused as invalid_client for <paramref name="reason"/>
        /// at <paramref name="endpoint"/> (token, introspection, revocation).
        /// </summary>
        internal static async Task<int> FailuresAsync(IServiceProvider services, string clientId, string reason, string endpoint = "token")
        {
            await using var scope = services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
            var refused = $"\"certificateRefused\":\"{reason}\"";
            var at = $"\"endpoint\":\"{endpoint}\"";
            return await db.AuditEntries.CountAsync(e => e.EventType == "token.failed" && e.ClientId == clientId
                && e.Details != null && e.Details.Contains("\"invalid_client\"") && e.Details.Contains(refused) && e.Details.Contains(at));
        }

        /// <summary>Listens to this server's refusal counter (meter Identity.Server) from now on.</summary>
        public RefusalCounter CountRefusals() => new(_host.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());

        /// <summary>A raw TLS handshake with <paramref name="baseUri"/>'s port: whether the client certificate was asked for and sent.</summary>
        public async Task<bool> HandshakeAsync(Uri baseUri, X509Certificate2? certificate, bool sendRequest = false)
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(IPAddress.Loopback, baseUri.Port);
            await using var ssl = new SslStream(tcp.GetStream());
            var serverCertificate = _serverCertificate;
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                RemoteCertificateValidationCallback = (_, presented, _, _) =>
                    presented is not null && presented.GetCertHashString() == serverCertificate.GetCertHashString(),
                ClientCertificates = certificate is null ? null : new X509CertificateCollection { certificate },
                // A full handshake: a resumed session (the mTLS port allows them, decision 0050) has no certificate request.
                AllowTlsResume = false,
            });
            if (sendRequest)
            {
                await ssl.WriteAsync("GET /.well-known/openid-configuration HTTP/1.1\r\nHost: localhost\r\n\r\n"u8.ToArray());
                if (await ssl.ReadAsync(new byte[1024]) == 0)
                {
                    throw new IOException("The server closed the connection.");
                }
            }

            return ssl.IsMutuallyAuthenticated;
        }

        public async Task<(HttpStatusCode Status, JsonElement Body)> TokenAsync(Uri baseUri, string clientId, X509Certificate2? certificate)
        {
            using var client = Client(baseUri, certificate);
            return await TokenAsync(client, clientId);
        }

        public async Task<(HttpStatusCode Status, JsonElement Body)> TokenAsync(HttpClient client, string clientId)
        {
            using var response = await client.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials",
                ["client_id"] = clientId,
                ["scope"] = "api.read",
            }));
            return (response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>());
        }

        /// <summary>An introspection (RFC 7662) or revocation (RFC 7009) request for a token nobody issued; empty body: {}.</summary>
        public async Task<(HttpStatusCode Status, JsonElement Body)> IntrospectOrRevokeAsync(
            Uri baseUri, string endpoint, string clientId, X509Certificate2? certificate, string? secret = null)
        {
            using var client = Client(baseUri, certificate);
            List<KeyValuePair<string, string>> form = [new("client_id", clientId), new("token", "an-access-token-of-someone")];
            if (secret is not null)
            {
                form.Add(new("client_secret", secret));
            }

            using var response = await client.PostAsync(endpoint == "introspection" ? "/connect/introspect" : "/connect/revoke",
                new FormUrlEncodedContent(form));
            var text = await response.Content.ReadAsStringAsync();
            return (response.StatusCode, JsonDocument.Parse(text.Length == 0 ? "{}" : text).RootElement.Clone());
        }

        public HttpClient Client(Uri baseUri, X509Certificate2? certificate)
        {
            var serverCertificate = _serverCertificate;
            var handler = new SocketsHttpHandler
            {
                PooledConnectionLifetime = TimeSpan.Zero,
                SslOptions = new SslClientAuthenticationOptions
                {
                    RemoteCertificateValidationCallback = (_, presented, _, _) =>
                        presented is not null && presented.GetCertHashString() == serverCertificate.GetCertHashString(),
                    ClientCertificates = certificate is null ? null : new X509CertificateCollection { certificate },
                },
            };
            return new HttpClient(handler) { BaseAddress = baseUri };
        }

        public async Task DisposeAsync()
        {
            await _fixture.DisposeAsync();
            foreach (var certificate in _certificates.Values)
            {
                certificate.Dispose();
            }

            _serverCertificate.Dispose();
            Directory.Delete(_directory, recursive: true);
        }


        private static SubjectAlternativeNameBuilder Dns(string name)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddDnsName(name);
            return san;
        }

        private static SubjectAlternativeNameBuilder UriName(string uri)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddUri(new Uri(uri));
            return san;
        }

        /// <summary>RFC 8705 §2.2: the client's JWKS carries its self-signed certificate in x5c.</summary>
        public static string Jwks(params X509Certificate2[] certificates) => JsonSerializer.Serialize(new
        {
            keys = certificates.Select(certificate =>
            {
                var parameters = certificate.GetECDsaPublicKey()!.ExportParameters(false);
                return new Dictionary<string, object>
                {
                    ["kty"] = "EC", ["crv"] = "P-256", ["use"] = "sig",
                    ["x"] = Base64UrlEncoder.Encode(parameters.Q.X), ["y"] = Base64UrlEncoder.Encode(parameters.Q.Y),
                    ["x5c"] = new[] { Convert.ToBase64String(certificate.RawData) },
                };
            }).ToArray(),
        });
    }

    /// <summary>Refusals counted by one server's <c>identity.mtls.client_auth.refusals</c>, by reason.</summary>
    public sealed class RefusalCounter : IDisposable
    {
        private readonly System.Diagnostics.Metrics.MeterListener _listener = new();
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _counts = new();

        public RefusalCounter(System.Diagnostics.Metrics.IMeterFactory scope)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument is { Name: "identity.mtls.client_auth.refusals", Meter.Name: "Identity.Server" } && ReferenceEquals(instrument.Meter.Scope, scope))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag.Key == "reason" && tag.Value is string reason)
                    {
                        _counts.AddOrUpdate(reason, value, (_, sum) => sum + value);
                    }
                }
            });
            _listener.Start();
        }

        public long Of(string reason) => _counts.GetValueOrDefault(reason);

        public override string ToString() => string.Join(", ", _counts.Select(c => $"{c.Key}={c.Value}"));

        public void Dispose() => _listener.Dispose();
    }
}
