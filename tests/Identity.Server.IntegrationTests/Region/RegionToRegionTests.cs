extern alias RegionSample;

using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Identity.Region.Tests.Infrastructure;
using Identity.Region.Tokens;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Region;

/// <summary>
/// Two regional services calling each other (issue 16 item 5): two instances of the real sample (eu, us) on Kestrel,
/// each with its API on a TLS endpoint that asks for certificates, and the real Identity with its mTLS port. eu gets
/// a token bound to its certificate and calls us over mutual TLS; the token without that certificate is worthless.
/// </summary>
public sealed class RegionToRegionTests(RegionToRegionTests.TwoRegions regions) : IClassFixture<RegionToRegionTests.TwoRegions>
{
    [Fact]
    public async Task CallRegion_EuCallsUsWithItsBoundToken_UsAnswersNamingEuAndItsCertificate()
    {
        // Act: eu's own endpoint makes the call (token client over mTLS, then the API call with the same certificate).
        using var browser = new HttpClient { BaseAddress = regions.EuWeb };
        using var response = await browser.GetAsync("/call/us");

        // Assert: us saw eu's client and eu's certificate, the one the token is bound to.
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        var answer = JsonDocument.Parse(body).RootElement;
        Assert.Equal("eu", answer.GetProperty("from").GetString());
        Assert.Equal("us", answer.GetProperty("answer").GetProperty("region").GetString());
        Assert.Equal("region-eu-service", answer.GetProperty("answer").GetProperty("caller").GetString());
        Assert.Equal(TestCertificates.Thumbprint(regions.EuCertificate), answer.GetProperty("answer").GetProperty("certificate").GetString());
    }

    [Fact]
    public async Task RegionInfo_EuTokenWithEuCertificate_Ok()
    {
        var token = await regions.EuTokenAsync();

        var status = await regions.CallUsAsync(token, regions.EuCertificate);

        Assert.Equal(HttpStatusCode.OK, status);
    }

    [Fact]
    public async Task RegionInfo_EuTokenReplayedAsPlainBearerWithoutCertificate_Unauthorized()
    {
        // Arrange: the very token eu uses, in the hands of someone without eu's key.
        var token = await regions.EuTokenAsync();

        // Act
        var status = await regions.CallUsAsync(token, certificate: null);

        // Assert: RFC 8705 §3, the token is refused without its certificate.
        Assert.Equal(HttpStatusCode.Unauthorized, status);
    }

    [Fact]
    public async Task RegionInfo_EuTokenPresentedWithAnotherServicesCertificate_Unauthorized()
    {
        var token = await regions.EuTokenAsync();

        var status = await regions.CallUsAsync(token, regions.UsCertificate);

        Assert.Equal(HttpStatusCode.Unauthorized, status);
    }

    [Fact]
    public async Task RegionInfo_UnboundTokenForTheApi_UnauthorizedEvenWithACertificate()
    {
        // Arrange: a token for the same API, from a client that authenticated with a secret (no cnf).
        var token = await regions.SecretClientTokenAsync();

        // Act
        var status = await regions.CallUsAsync(token, regions.EuCertificate);

        // Assert: the sample's API requires bound tokens.
        Assert.Equal(HttpStatusCode.Unauthorized, status);
    }

    /// <summary>Identity (SQLite, plain HTTP on loopback plus its mTLS port), and the eu and us sample services.</summary>
    public sealed class TwoRegions : IAsyncLifetime
    {
        private const string Audience = "urn:identity:region-api";
        private readonly ServerFixture<SqliteTestDatabase> _identity = new();
        private readonly string _directory = Directory.CreateTempSubdirectory("region-to-region-").FullName;
        private readonly List<IAsyncDisposable> _hosts = [];
        private X509Certificate2 _server = null!;
        private Uri _issuer = null!;
        private Uri _usApi = null!;
        private IServiceProvider _eu = null!;

        public X509Certificate2 EuCertificate { get; private set; } = null!;

        public X509Certificate2 UsCertificate { get; private set; } = null!;

        public Uri EuWeb { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            await _identity.InitializeAsync();
            using var ca = TestCertificates.Authority("CN=Identity development CA");
            EuCertificate = TestCertificates.Client(ca, "CN=region-eu-service");
            UsCertificate = TestCertificates.Client(ca, "CN=region-us-service");
            _server = TestCertificates.Server();
            var caFile = Write("ca.pem", ca.ExportCertificatePem());
            // The services trust the development CA for callers, and the (self-signed) server certificate for servers.
            var serverTrust = Write("server-trust.pem", _server.ExportCertificatePem());
            var (serverFile, serverKey) = WritePem("server", _server);

            var ports = TestPorts.Take(6);
            _issuer = new Uri($"http://localhost:{ports[0]}/");
            var identity = _identity.StartServer(settings =>
            {
                settings["Oidc:Issuer"] = _issuer.AbsoluteUri;
                settings["Mtls:Port"] = ports[1].ToString(System.Globalization.CultureInfo.InvariantCulture);
                settings["Mtls:CertificateFile"] = serverFile;
                settings["Mtls:CertificateKeyFile"] = serverKey;
                settings["Mtls:TrustedCaFile"] = caFile;
                settings["Oidc:Scopes:3:Name"] = "region.api";
                settings["Oidc:Scopes:3:Resources:0"] = Audience;
                foreach (var (index, region) in new[] { (30, "eu"), (31, "us") })
                {
                    settings[$"Oidc:Clients:{index}:ClientId"] = $"region-{region}-service";
                    settings[$"Oidc:Clients:{index}:GrantTypes:0"] = "client_credentials";
                    settings[$"Oidc:Clients:{index}:Scopes:0"] = "region.api";
                    settings[$"Oidc:Clients:{index}:TlsClientAuthSubjectDn"] = $"CN=region-{region}-service";
                }

                settings["Oidc:Clients:32:ClientId"] = "region-secret-service";
                settings["Oidc:Clients:32:GrantTypes:0"] = "client_credentials";
                settings["Oidc:Clients:32:Scopes:0"] = "region.api";
                settings["Oidc:Clients:32:SecretFile"] = _identity.SecretFile("svc-basic");
            });
            identity.UseKestrel(kestrel => kestrel.ListenLocalhost(ports[0]));
            identity.StartServer();

            _usApi = new Uri($"https://localhost:{ports[5]}/");
            var us = Start("us", ports[4], _usApi, UsCertificate, null, caFile, serverTrust, serverFile, serverKey);
            var eu = Start("eu", ports[2], new Uri($"https://localhost:{ports[3]}/"), EuCertificate, _usApi, caFile, serverTrust, serverFile, serverKey);
            EuWeb = new Uri($"http://127.0.0.1:{ports[2]}/");
            _eu = eu.Services;
            _ = us.Services;
        }

        /// <summary>The token eu's token client holds (the one its calls carry).</summary>
        public async Task<string> EuTokenAsync() =>
            await _eu.GetRequiredKeyedService<IdentityTokenClient>(TokenClientExtensions.DefaultName).GetTokenAsync();

        /// <summary>A client-credentials token for the region API from a client with a secret: not bound.</summary>
        public async Task<string> SecretClientTokenAsync()
        {
            using var client = new HttpClient { BaseAddress = _issuer };
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
                Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes("region-secret-service:" + _identity.BasicSecret)));
            using var response = await client.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials",
                ["scope"] = "region.api",
            }));
            var body = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.True(response.IsSuccessStatusCode, body.ToString());
            Assert.False(body.GetProperty("access_token").GetString()!.Contains("x5t", StringComparison.Ordinal));
            return body.GetProperty("access_token").GetString()!;
        }

        /// <summary>GET us's /api/region-info with <paramref name="token"/>, over TLS presenting <paramref name="certificate"/>.</summary>
        public async Task<HttpStatusCode> CallUsAsync(string token, X509Certificate2? certificate)
        {
            var server = _server;
            using var handler = new SocketsHttpHandler
            {
                SslOptions = new SslClientAuthenticationOptions
                {
                    RemoteCertificateValidationCallback = (_, presented, _, _) => presented is not null && presented.GetCertHashString() == server.GetCertHashString(),
                    ClientCertificates = certificate is null ? null : new X509CertificateCollection { certificate },
                    AllowTlsResume = false,
                },
            };
            using var client = new HttpClient(handler) { BaseAddress = _usApi };
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var response = await client.GetAsync("/api/region-info");
            return response.StatusCode;
        }

        private SampleHost Start(
            string region, int webPort, Uri api, X509Certificate2 certificate, Uri? peer, string caFile, string serverTrust, string serverFile, string serverKey)
        {
            var (certificateFile, keyFile) = WritePem($"region-{region}-service", certificate);
            var settings = new Dictionary<string, string?>
            {
                ["Identity:Authority"] = _issuer.AbsoluteUri,
                ["Identity:ClientId"] = "region-" + region,
                ["Identity:ClientSecret"] = _identity.BasicSecret,
                ["Identity:Region"] = region,
                ["IdentityRegion:ReplicaConnectionString"] = $"Data Source={Path.Combine(_directory, $"replica-{region}.db")}",
                ["Kestrel:Endpoints:Web:Url"] = $"http://127.0.0.1:{webPort}",
                ["Kestrel:Endpoints:Api:Url"] = api.AbsoluteUri,
                ["Kestrel:Endpoints:Api:Certificate:Path"] = serverFile,
                ["Kestrel:Endpoints:Api:Certificate:KeyPath"] = serverKey,
                ["IdentityTokenValidation:Authority"] = _issuer.AbsoluteUri,
                ["IdentityTokenValidation:Audiences:0"] = Audience,
                ["IdentityTokenValidation:TrustedCaFile"] = caFile,
            };
            if (peer is not null)
            {
                settings["RegionCalls:Peers:us"] = peer.AbsoluteUri;
                settings["IdentityTokenClient:Authority"] = _issuer.AbsoluteUri;
                settings["IdentityTokenClient:ClientId"] = $"region-{region}-service";
                settings["IdentityTokenClient:Scope"] = "region.api";
                settings["IdentityTokenClient:CertificateFile"] = certificateFile;
                settings["IdentityTokenClient:CertificateKeyFile"] = keyFile;
                settings["IdentityTokenClient:TrustedServerCaFile"] = serverTrust;
            }

            var host = new SampleHost(settings);
            _hosts.Add(host);
            host.UseKestrel();
            host.StartServer();
            return host;
        }

        private string Write(string name, string content)
        {
            var path = Path.Combine(_directory, name);
            File.WriteAllText(path, content);
            return path;
        }

        private (string Certificate, string Key) WritePem(string name, X509Certificate2 certificate) =>
            (Write(name + ".pem", certificate.ExportCertificatePem()), Write(name + ".key", certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem()));


        public async Task DisposeAsync()
        {
            foreach (var host in Enumerable.Reverse(_hosts))
            {
                await host.DisposeAsync();
            }

            await _identity.DisposeAsync();
            EuCertificate.Dispose();
            UsCertificate.Dispose();
            _server.Dispose();
            try
            {
                Directory.Delete(_directory, recursive: true);
            }
            catch (IOException)
            {
                // A replica file still open by a finishing host; the temp folder is cleaned by the OS.
            }
        }
    }

    /// <summary>The real sample, configured only through settings, on the endpoints its Kestrel settings name.</summary>
    private sealed class SampleHost(IReadOnlyDictionary<string, string?> settings) : WebApplicationFactory<RegionSample::Program>
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            builder.UseEnvironment("Testing");
            builder.UseSetting("Logging:LogLevel:Default", "Warning");
            foreach (var (key, value) in settings)
            {
                builder.UseSetting(key, value);
            }
        }
    }
}
