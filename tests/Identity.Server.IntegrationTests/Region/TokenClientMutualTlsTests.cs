using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Identity.Region.Tests.Infrastructure;
using Identity.Region.Tokens;
using Identity.Server.IntegrationTests.Connect;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.IntegrationTests.Region;

/// <summary>
/// The regional token client over mutual TLS (RFC 8705) against the real server on Kestrel with its mTLS port: the
/// certificate from files, the token bound to it, a rotated certificate, and the outgoing call that presents it.
/// </summary>
public sealed class TokenClientMutualTlsTests(MutualTlsTests.MutualTlsServer server) : IClassFixture<MutualTlsTests.MutualTlsServer>, IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("token-client-mtls-").FullName;
    private readonly TestClock _clock = new();
    private ServiceProvider? _services;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_services is not null)
        {
            await _services.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task GetTokenAsync_PemCertificateAndDiscovery_TokenBoundToTheCertificate()
    {
        // Arrange: no MtlsTokenEndpoint, so the alias comes from the discovery document on the main port.
        var client = TokenClient("svc-pki", WritePem(server.PkiClient, "client"));

        // Act
        var token = await client.GetTokenAsync();

        // Assert: RFC 8705 §3.1, the thumbprint computed here from the certificate's DER bytes.
        Assert.Equal(TestCertificates.Thumbprint(server.PkiClient), Confirmation(token));
    }

    [Fact]
    public async Task GetTokenAsync_SelfSignedCertificateInPkcs12WithPassword_TokenBoundToTheCertificate()
    {
        // Arrange: a PKCS#12 file and the alias given in the settings.
        var pfx = Path.Combine(_directory, "self.pfx");
        await File.WriteAllBytesAsync(pfx, server.SelfSigned.Export(X509ContentType.Pkcs12, "pfx-password"));
        var client = TokenClient("svc-self", new()
        {
            ["CertificateFile"] = pfx,
            ["CertificatePassword"] = "pfx-password",
            ["MtlsTokenEndpoint"] = new Uri(server.Mtls, "connect/token").AbsoluteUri,
        });

        // Act
        var token = await client.GetTokenAsync();

        // Assert
        Assert.Equal(TestCertificates.Thumbprint(server.SelfSigned), Confirmation(token));
    }

    [Fact]
    public async Task GetTokenAsync_CertificateFilesRotated_NewTokenBoundToTheNewCertificateAfterTheReloadInterval()
    {
        // Arrange
        var files = WritePem(server.PkiClient, "client");
        var client = TokenClient("svc-pki", files);
        var first = await client.GetTokenAsync();

        // Act: the platform mounts a renewed certificate over the old files.
        WritePem(server.Certificate("pki-renewed")!, "client");
        var beforeTheInterval = await client.GetTokenAsync();
        _clock.Advance(TimeSpan.FromSeconds(11));
        var after = await client.GetTokenAsync();

        // Assert: the cached token until the files are looked at again (10 s), then a new one bound to the new certificate.
        Assert.Equal(first, beforeTheInterval);
        Assert.NotEqual(first, after);
        Assert.Equal(TestCertificates.Thumbprint(server.Certificate("pki-renewed")!), Confirmation(after));
    }

    [Fact]
    public async Task GetTokenAsync_CertificateFileCaughtHalfWritten_KeepsTheCertificateInUseAndItsToken()
    {
        // Arrange
        var files = WritePem(server.PkiClient, "client");
        var client = TokenClient("svc-pki", files);
        var first = await client.GetTokenAsync();

        // Act: the rotation is looked at while only half of the new certificate is written.
        var renewed = server.Certificate("pki-renewed")!.ExportCertificatePem();
        await File.WriteAllTextAsync(files["CertificateFile"]!, renewed[..(renewed.Length / 2)]);
        _clock.Advance(TimeSpan.FromSeconds(11));
        var during = await client.GetTokenAsync();

        // Assert: nothing is torn down; the token bound to the certificate still in use is served.
        Assert.Equal(first, during);
        Assert.Equal(TestCertificates.Thumbprint(server.PkiClient), Confirmation(during));
    }

    [Fact]
    public async Task UseIdentityClientCertificate_OutgoingCall_PresentsTheCertificateItsTokenIsBoundTo()
    {
        // Arrange: an API on Kestrel that requires a client certificate and echoes it with the token's binding.
        await using var api = await EchoApi.StartAsync(server.ServerTlsCertificate);
        var files = WritePem(server.PkiClient, "client");
        var http = ApiClient("svc-pki", files, api.Address);

        // Act: a call, then the certificate rotated and a second call.
        var before = await http.GetFromJsonAsync<JsonElement>("/echo");
        WritePem(server.Certificate("pki-renewed")!, "client");
        _clock.Advance(TimeSpan.FromSeconds(11));
        var after = await http.GetFromJsonAsync<JsonElement>("/echo");

        // Assert: each call presented the certificate its token is bound to, the renewed one after the rotation.
        Assert.Equal(TestCertificates.Thumbprint(server.PkiClient), before.GetProperty("presented").GetString());
        Assert.Equal(TestCertificates.Thumbprint(server.PkiClient), before.GetProperty("bound").GetString());
        Assert.Equal(TestCertificates.Thumbprint(server.Certificate("pki-renewed")!), after.GetProperty("presented").GetString());
        Assert.Equal(TestCertificates.Thumbprint(server.Certificate("pki-renewed")!), after.GetProperty("bound").GetString());
    }

    [Fact]
    public async Task GetTokenAsync_ServerCertificateNotFromATrustedCa_FailsWithoutSendingTheRequest()
    {
        // Arrange: no TrustedServerCaFile, and the server's certificate is self-signed.
        var settings = WritePem(server.PkiClient, "client");
        settings["TrustedServerCaFile"] = null;
        var client = TokenClient("svc-pki", settings);

        // Act
        var error = await Assert.ThrowsAsync<HttpRequestException>(async () => await client.GetTokenAsync());

        // Assert
        Assert.Contains("could not be reached", error.Message);
    }

    private static string? Confirmation(string jwt) =>
        JsonDocument.Parse(Base64UrlEncoder.Decode(jwt.Split('.')[1])).RootElement.GetProperty("cnf").GetProperty("x5t#S256").GetString();

    /// <summary>The certificate and its key as PEM files (the same names every time, as a mounted secret).</summary>
    private Dictionary<string, string?> WritePem(X509Certificate2 certificate, string name)
    {
        var certificateFile = Path.Combine(_directory, name + ".crt");
        var keyFile = Path.Combine(_directory, name + ".key");
        File.WriteAllText(certificateFile, certificate.ExportCertificatePem());
        File.WriteAllText(keyFile, certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        return new() { ["CertificateFile"] = certificateFile, ["CertificateKeyFile"] = keyFile };
    }

    private IdentityTokenClient TokenClient(string clientId, Dictionary<string, string?> settings)
    {
        _services = Services(clientId, settings).BuildServiceProvider();
        return _services.GetRequiredKeyedService<IdentityTokenClient>(TokenClientExtensions.DefaultName);
    }

    private HttpClient ApiClient(string clientId, Dictionary<string, string?> settings, Uri api)
    {
        var services = Services(clientId, settings);
        services.AddHttpClient("api", http => http.BaseAddress = api).AddIdentityAccessToken().UseIdentityClientCertificate();
        _services = services.BuildServiceProvider();
        return _services.GetRequiredService<IHttpClientFactory>().CreateClient("api");
    }

    /// <summary>A token client configured as a service would be: through its configuration section.</summary>
    private ServiceCollection Services(string clientId, Dictionary<string, string?> settings)
    {
        var configuration = new Dictionary<string, string?>
        {
            ["IdentityTokenClient:Authority"] = server.Main.AbsoluteUri,
            ["IdentityTokenClient:ClientId"] = clientId,
            ["IdentityTokenClient:Scope"] = "api.read",
            ["IdentityTokenClient:TrustedServerCaFile"] = server.ServerCertificateFile,
        };
        foreach (var (key, value) in settings)
        {
            // null removes a setting
            configuration["IdentityTokenClient:" + key] = value;
        }

        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<TimeProvider>(_clock);
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(configuration).Build());
        services.AddIdentityTokenClient();
        return services;
    }

    /// <summary>An API that requires a client certificate and answers which one it saw and which one the token names.</summary>
    private sealed class EchoApi(WebApplication app) : IAsyncDisposable
    {
        public Uri Address { get; } = new(app.Urls.Single().Replace("127.0.0.1", "localhost", StringComparison.Ordinal));

        public static async Task<EchoApi> StartAsync(X509Certificate2 serverCertificate)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(https =>
            {
                https.ServerCertificate = serverCertificate;
                https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
                https.AllowAnyClientCertificate();
                https.OnAuthenticate = (_, ssl) => ssl.AllowTlsResume = false;
            })));
            var app = builder.Build();
            app.MapGet("/echo", (HttpContext context) =>
            {
                var token = context.Request.Headers.Authorization.ToString()["Bearer ".Length..];
                return Results.Json(new
                {
                    presented = TestCertificates.Thumbprint(context.Connection.ClientCertificate!),
                    bound = Confirmation(token),
                });
            });
            await app.StartAsync();
            return new EchoApi(app);
        }

        public async ValueTask DisposeAsync() => await app.DisposeAsync();
    }
}
