using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Identity.Region.Tests.Infrastructure;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using static Identity.Server.IntegrationTests.Connect.MutualTlsTests;
using Certificates = Identity.Server.IntegrationTests.Connect.MutualTlsTests.MutualTlsServer;

namespace Identity.Server.IntegrationTests.Hosting;

/// <summary>
/// Mutual TLS terminated by a proxy: a real nginx asks for the client certificate and forwards it URL-encoded
/// (<c>$ssl_client_escaped_cert</c>) to Identity on Kestrel, which has no mTLS port of its own. Identity believes the
/// header only from the configured proxy (127.0.0.1) and only for the mTLS host; a client in a network namespace plays
/// another machine that talks to Identity directly.
/// </summary>
public sealed class ForwardedClientCertificateTests(ForwardedClientCertificateTests.ProxiedServer server)
    : IClassFixture<ForwardedClientCertificateTests.ProxiedServer>
{
    private const string Header = "ssl-client-cert";
    private const string MtlsHost = "mtls.test";

    [Theory]
    [InlineData("svc-pki", "pki")]
    [InlineData("svc-self", "self-signed")]
    public async Task ClientCredentials_CertificateThroughNginx_TokenBoundToThatCertificate(string clientId, string certificate)
    {
        // Arrange: a PKI certificate (tls_client_auth) or a self-signed one in the client's JWKS.
        var presented = certificate == "pki" ? server.PkiClient : server.SelfSigned;
        using var client = server.ThroughNginx(presented);

        // Act
        var (status, body) = await TokenAsync(client, clientId);

        // Assert: the thumbprint of the certificate the client holds, computed here (RFC 8705 §3.1).
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        Assert.Equal(TestCertificates.Thumbprint(presented), Confirmation(body));
    }

    [Fact]
    public async Task ClientCredentials_NoCertificateThroughNginx_InvalidClient401AndAudited()
    {
        // Arrange
        var before = await server.FailuresAsync("svc-pki", "no_certificate");
        using var client = server.ThroughNginx(null);

        // Act
        var (status, body) = await TokenAsync(client, "svc-pki");

        // Assert: no client authentication included (RFC 6749 §5.2), not OpenIddict's invalid_request.
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal("invalid_client", body.GetProperty("error").GetString());
        Assert.Equal(before + 1, await server.FailuresAsync("svc-pki", "no_certificate"));
    }

    [Fact]
    public async Task ClientCredentials_HeaderSentByTheClientToNginx_NotPassedOn()
    {
        // Arrange: no certificate in the TLS handshake, the header written by the client itself.
        using var client = server.ThroughNginx(null);

        // Act
        var (status, body) = await TokenAsync(client, "svc-pki", EscapedPem(server.PkiClient));

        // Assert: nginx's proxy_set_header replaced it (with nothing), so no certificate reached Identity.
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal("invalid_client", body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task ClientCredentials_HeaderFromAPeerThatIsNotAProxy_Ignored()
    {
        // Arrange: another machine sends what nginx would send, straight to Identity.
        using var client = server.FromAnotherMachine();

        // Act
        var certificateClient = await TokenAsync(client, "svc-pki", EscapedPem(server.PkiClient));
        var secretClient = await TokenAsync(client, "svc-basic", EscapedPem(server.PkiClient), server.BasicSecret);

        // Assert: the certificate client is not authenticated, and the secret client's token is not bound to it.
        Assert.False(certificateClient.Body.TryGetProperty("access_token", out _), certificateClient.Body.ToString());
        Assert.True(secretClient.Status == HttpStatusCode.OK, secretClient.Body.ToString());
        Assert.False(Claims(secretClient.Body).TryGetProperty("cnf", out _));
    }

    [Fact]
    public async Task ClientCredentials_HeaderFromTheProxyForAnotherHost_Ignored()
    {
        // Arrange: the proxy's own address (127.0.0.1), the same header, the issuer's (browser) host or the mTLS host.
        using var client = server.AsTheProxy();

        // Act
        var browserHost = await TokenAsync(client, "svc-pki", EscapedPem(server.PkiClient), host: "localhost");
        var mtlsHost = await TokenAsync(client, "svc-pki", EscapedPem(server.PkiClient));

        // Assert: only on the mTLS host does the certificate authenticate the client.
        Assert.False(browserHost.Body.TryGetProperty("access_token", out _), browserHost.Body.ToString());
        Assert.True(mtlsHost.Status == HttpStatusCode.OK, mtlsHost.Body.ToString());
        Assert.Equal(TestCertificates.Thumbprint(server.PkiClient), Confirmation(mtlsHost.Body));
    }

    [Fact]
    public async Task ClientCredentials_ProxyWithoutXForwardedProto_InvalidClientSayingSo()
    {
        // Arrange: a proxy that forwards the certificate but does not say the request came over https.
        using var client = server.AsTheProxy();
        client.DefaultRequestHeaders.Remove("X-Forwarded-Proto");

        // Act
        var (status, body) = await TokenAsync(client, "svc-pki", EscapedPem(server.PkiClient));

        // Assert: not OpenIddict's "client_secret or client_assertion must be specified", which would mislead.
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Contains("X-Forwarded-Proto", body.GetProperty("error_description").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClientCredentials_EnvoyXfccFromTheProxy_TokenBoundToThatCertificate()
    {
        // Arrange: what Envoy writes with forward_client_cert_details SANITIZE_SET and set_current_client_cert_details
        // (cert, subject, uri): one element, quoted values, Hash the hex SHA-256 of the DER certificate.
        var certificate = server.PkiClient;
        var xfcc = $"By=spiffe://example.test/identity;Hash={Convert.ToHexStringLower(SHA256.HashData(certificate.RawData))};"
            + $"Cert=\"{EscapedPem(certificate)}\";Subject=\"CN=orders.eu,O=Example\";URI=";
        using var client = server.AsTheProxy();

        // Act
        var (status, body) = await TokenAsync(client, "svc-pki", xfcc);

        // Assert
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        Assert.Equal(TestCertificates.Thumbprint(certificate), Confirmation(body));
    }

    public static TheoryData<string, string> Malformed => new()
    {
        { "not a certificate", "Zm9yZ2VkLXNlY3JldC1tYXJrZXI" },
        { "PEM that is no certificate", "-----BEGIN%20CERTIFICATE-----%0AZm9yZ2VkLXNlY3JldC1tYXJrZXI%3D%0A-----END%20CERTIFICATE-----%0A" },
        { "XFCC without Cert", "By=spiffe://x;Subject=\"Zm9yZ2VkLXNlY3JldC1tYXJrZXI\"" },
        { "XFCC quote not closed", "Cert=\"-----BEGIN%20CERTIFICATE-----Zm9yZ2VkLXNlY3JldC1tYXJrZXI" },
        { "XFCC of two proxies", "By=a;Cert=\"{pem}\",By=b;Cert=\"{pem}\";Subject=\"Zm9yZ2VkLXNlY3JldC1tYXJrZXI\"" },
        { "XFCC Hash of another certificate", "Hash=00ff;Cert=\"{pem}\";Subject=\"Zm9yZ2VkLXNlY3JldC1tYXJrZXI\"" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public async Task ClientCredentials_MalformedHeaderFromTheProxy_InvalidClient401AuditedContentNotLogged(string what, string header)
    {
        // Arrange: each value carries a marker that must not reach the logs.
        var value = header.Replace("{pem}", EscapedPem(server.PkiClient), StringComparison.Ordinal);
        var before = await server.FailuresAsync("svc-pki", "forwarded_unreadable");
        using var client = server.AsTheProxy();

        // Act
        var (status, body) = await TokenAsync(client, "svc-pki", value);

        // Assert
        Assert.True(status == HttpStatusCode.Unauthorized, $"{what}: {body}");
        Assert.Equal("invalid_client", body.GetProperty("error").GetString());
        Assert.Equal(before + 1, await server.FailuresAsync("svc-pki", "forwarded_unreadable"));
        var lines = server.Logs.Lines.ToList();
        Assert.Contains(lines, line => line.Contains("The forwarded client certificate header", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, line => line.Contains("Zm9yZ2VkLXNlY3JldC1tYXJrZXI", StringComparison.Ordinal)
            || line.Contains(Convert.ToBase64String(server.PkiClient.RawData)[..40], StringComparison.Ordinal));
    }

    [Fact]
    public async Task Discovery_ForwardingOnly_AliasesOnTheProxysMtlsAddress()
    {
        // Act
        using var client = server.AsTheProxy();
        var document = await client.GetFromJsonAsync<JsonElement>("/.well-known/openid-configuration");

        // Assert: RFC 8705 §5, with no mTLS port on Identity itself.
        var aliases = document.GetProperty("mtls_endpoint_aliases");
        Assert.Equal(new Uri(server.MtlsBase, "connect/token").AbsoluteUri, aliases.GetProperty("token_endpoint").GetString());
        Assert.True(document.GetProperty("tls_client_certificate_bound_access_tokens").GetBoolean());
        var methods = document.GetProperty("token_endpoint_auth_methods_supported").EnumerateArray().Select(m => m.GetString()).ToList();
        Assert.Contains("tls_client_auth", methods);
        Assert.Contains("self_signed_tls_client_auth", methods);
    }

    public static TheoryData<string, string?, string> BadSettings => new()
    {
        { "ForwardedHeaders:KnownProxies:0", null, "Mtls:ForwardedCertificateHeader needs ForwardedHeaders:KnownProxies or ForwardedHeaders:KnownNetworks" },
        { "Mtls:BaseUri", null, "Mtls:ForwardedCertificateHeader needs Mtls:BaseUri" },
        { "Mtls:BaseUri", "https://localhost:9443/", "Mtls:BaseUri must be a host other than Oidc:Issuer's" },
        { "Mtls:ForwardedCertificateHeader", null, "or behind a proxy Mtls:ForwardedCertificateHeader, Mtls:BaseUri and Mtls:TrustedCaFile" },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public async Task Start_ForwardingMisconfigured_RefusesToStartNamingTheKey(string key, string? value, string message)
    {
        // Arrange: one setting changed, or removed (null).
        await using var host = new IdentityServerHost(server.Settings(settings =>
        {
            if (value is null)
            {
                settings.Remove(key);
            }
            else
            {
                settings[key] = value;
            }
        }));

        // Act
        var error = Record.Exception(() => host.Start());

        // Assert
        Assert.IsType<Microsoft.Extensions.Options.OptionsValidationException>(error?.GetBaseException());
        Assert.Contains(message, error!.GetBaseException().Message, StringComparison.Ordinal);
    }

    /// <summary>nginx's <c>$ssl_client_escaped_cert</c>: the PEM certificate, URL-encoded.</summary>
    private static string EscapedPem(X509Certificate2 certificate) => Uri.EscapeDataString(certificate.ExportCertificatePem() + "\n");

    private static JsonElement Claims(JsonElement tokenResponse) =>
        JsonDocument.Parse(Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Decode(
            tokenResponse.GetProperty("access_token").GetString()!.Split('.')[1])).RootElement;

    /// <summary>A client-credentials request to the mTLS host, with <paramref name="header"/> forwarded and a secret if given.</summary>
    private static async Task<(HttpStatusCode Status, JsonElement Body)> TokenAsync(
        HttpClient client, string clientId, string? header = null, string? secret = null, string host = MtlsHost)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_id"] = clientId, ["scope"] = "api.read" };
        if (secret is not null)
        {
            form["client_secret"] = secret;
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, "/connect/token") { Content = new FormUrlEncodedContent(form) };
        request.Headers.Host = host;
        if (header is not null)
        {
            request.Headers.TryAddWithoutValidation(Header, header);
        }

        using var response = await client.SendAsync(request);
        return (response.StatusCode, await response.JsonAsync());
    }

    /// <summary>Identity (no mTLS port) behind nginx, the certificates of the tests, and a machine that is not the proxy.</summary>
    public sealed class ProxiedServer : IAsyncLifetime
    {
        private readonly ServerFixture<SqliteTestDatabase> _fixture = new();
        private readonly NetworkNamespace _network = new();
        private readonly string _directory = Directory.CreateTempSubdirectory("mtls-proxy-").FullName;
        private X509Certificate2 _nginxCertificate = null!;
        private IdentityServerHost _host = null!;
        private NginxProxy _nginx = null!;
        private int _loopbackPort;
        private int _peerPort;
        private string _caFile = "";

        public CapturedLogs Logs { get; } = new();

        public X509Certificate2 PkiClient { get; private set; } = null!;

        public X509Certificate2 SelfSigned { get; private set; } = null!;

        public string BasicSecret => _fixture.BasicSecret;

        /// <summary>The proxy's mTLS address, Mtls:BaseUri.</summary>
        public Uri MtlsBase { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            await _fixture.InitializeAsync();
            await _network.InitializeAsync();
            using var ca = TestCertificates.Authority("CN=Identity Test Services CA");
            PkiClient = TestCertificates.Client(ca, "CN=orders.eu, O=Example");
            SelfSigned = TestCertificates.SelfSignedClient("CN=self-signed service");
            _nginxCertificate = TestCertificates.Server();
            _caFile = Path.Combine(_directory, "ca.pem");
            await File.WriteAllTextAsync(_caFile, ca.ExportCertificatePem());
            await File.WriteAllTextAsync(Path.Combine(_directory, "server.pem"), _nginxCertificate.ExportCertificatePem());
            await File.WriteAllTextAsync(Path.Combine(_directory, "server.key"), _nginxCertificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());

            _loopbackPort = TestPorts.Next();
            _peerPort = TestPorts.Next();
            var nginxPort = TestPorts.Next();
            MtlsBase = new Uri($"https://{MtlsHost}:{nginxPort}/");

            _host = new IdentityServerHost(Settings(), Logs);
            var (loopbackPort, peerPort, peer) = (_loopbackPort, _peerPort, _network.HostAddress);
            _host.UseKestrel(kestrel =>
            {
                kestrel.Listen(IPAddress.Loopback, loopbackPort);
                kestrel.Listen(peer, peerPort);
            });
            _host.StartServer();

            // What deploy/README.md tells nginx to do: ask for a certificate (Identity checks it), replace whatever the
            // client sent in the header by the certificate of the handshake (empty, hence not sent, without one). No
            // TLS resumption: each test's client holds another certificate.
            _nginx = await NginxProxy.StartAsync(_directory, nginxPort, $$"""
                server {
                    listen 127.0.0.1:{{nginxPort}} ssl;
                    server_name {{MtlsHost}};
                    ssl_certificate {{_directory}}/server.pem;
                    ssl_certificate_key {{_directory}}/server.key;
                    ssl_verify_client optional_no_ca;
                    ssl_session_tickets off;
                    location / {
                        proxy_pass http://127.0.0.1:{{_loopbackPort}};
                        proxy_set_header Host $host;
                        proxy_set_header X-Forwarded-For $remote_addr;
                        proxy_set_header X-Forwarded-Proto https;
                        proxy_set_header {{Header}} $ssl_client_escaped_cert;
                    }
                }
                """);
        }

        /// <summary>The settings of the proxied server, <paramref name="change"/> applied last.</summary>
        public Dictionary<string, string?> Settings(Action<Dictionary<string, string?>>? change = null)
        {
            var settings = _fixture.Settings();
            settings["Mtls:ForwardedCertificateHeader"] = Header;
            settings["Mtls:BaseUri"] = MtlsBase.AbsoluteUri;
            settings["Mtls:TrustedCaFile"] = _caFile;
            settings["ForwardedHeaders:KnownProxies:0"] = "127.0.0.1";
            Certificates.AddClient(settings, 20, "svc-pki", "TlsClientAuthSubjectDn", "CN=orders.eu,O=Example");
            Certificates.AddClient(settings, 21, "svc-self", "Jwks", Certificates.Jwks(SelfSigned));
            change?.Invoke(settings);
            return settings;
        }

        /// <summary>A client of nginx's mTLS host (resolved to 127.0.0.1) presenting <paramref name="certificate"/>.</summary>
        public HttpClient ThroughNginx(X509Certificate2? certificate)
        {
            var nginxCertificate = _nginxCertificate.GetCertHashString();
            var port = MtlsBase.Port;
            return new HttpClient(new SocketsHttpHandler
            {
                PooledConnectionLifetime = TimeSpan.Zero,
                ConnectCallback = async (_, cancellationToken) =>
                {
                    var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                    await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                },
                SslOptions = new SslClientAuthenticationOptions
                {
                    RemoteCertificateValidationCallback = (_, presented, _, _) => presented?.GetCertHashString() == nginxCertificate,
                    ClientCertificates = certificate is null ? null : new X509CertificateCollection { certificate },
                },
            })
            { BaseAddress = MtlsBase };
        }

        /// <summary>Straight to Identity from the proxy's address (127.0.0.1), with X-Forwarded-Proto: what nginx itself does.</summary>
        public HttpClient AsTheProxy()
        {
            var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_loopbackPort.ToString(CultureInfo.InvariantCulture)}/") };
            client.DefaultRequestHeaders.Add("X-Forwarded-Proto", "https");
            return client;
        }

        /// <summary>Straight to Identity from another machine (the network namespace's address).</summary>
        public HttpClient FromAnotherMachine() => _network.Client(new Uri($"http://{_network.HostAddress}:{_peerPort.ToString(CultureInfo.InvariantCulture)}/"));

        public Task<int> FailuresAsync(string clientId, string reason) => Certificates.FailuresAsync(_host.Services, clientId, reason);

        public async Task DisposeAsync()
        {
            _nginx?.Dispose();
            if (_host is not null)
            {
                await _host.DisposeAsync();
            }

            await _network.DisposeAsync();
            await _fixture.DisposeAsync();
            PkiClient?.Dispose();
            SelfSigned?.Dispose();
            _nginxCertificate?.Dispose();
            Directory.Delete(_directory, recursive: true);
        }
    }
}
