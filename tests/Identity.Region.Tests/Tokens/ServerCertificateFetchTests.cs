using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Identity.Region.Tests.Infrastructure;
using Identity.Region.Tokens;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;

namespace Identity.Region.Tests.Tokens;

/// <summary>
/// The token client's connections to Identity (decision 0067): the server's certificate names issuer, OCSP and CRL
/// addresses on a local web server, and the client validates its chain without fetching any of them.
/// </summary>
public sealed class ServerCertificateFetchTests : IAsyncLifetime
{
    private readonly X509Certificate2 _ca = TestCertificates.Authority("CN=Identity Server CA");
    private readonly string _directory = Directory.CreateTempSubdirectory("region-server-chain-").FullName;
    private WebApplication? _server;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        _ca.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task Send_ServerCertificateOfTheTrustedCaNamingUrls_AcceptedWithoutFetching()
    {
        using var web = new CountingWebServer();
        using var certificate = TestCertificates.ServerPointingAt(_ca, web.Url);
        var address = await StartServerAsync(certificate);
        using var client = new HttpMessageInvoker(ClientSecretBasicAuthentication.Instance.CreatePrimaryHandler(Trusting(_ca)));

        using var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Get, address), CancellationToken.None);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(web.Requests);
    }

    [Fact]
    public async Task Send_ServerCertificateOfAnUnknownCaNamingUrls_RefusedWithoutFetching()
    {
        using var web = new CountingWebServer();
        using var unknownCa = TestCertificates.Authority("CN=Unknown CA");
        using var certificate = TestCertificates.ServerPointingAt(unknownCa, web.Url);
        var address = await StartServerAsync(certificate);
        using var client = new HttpMessageInvoker(ClientSecretBasicAuthentication.Instance.CreatePrimaryHandler(Trusting(_ca)));

        await Assert.ThrowsAsync<HttpRequestException>(() => client.SendAsync(new HttpRequestMessage(HttpMethod.Get, address), CancellationToken.None));

        Assert.Empty(web.Requests);
    }

    private IdentityTokenClientOptions Trusting(X509Certificate2 ca)
    {
        var file = Path.Combine(_directory, "server-ca.pem");
        File.WriteAllText(file, ca.ExportCertificatePem());
        return new IdentityTokenClientOptions { TrustedServerCaFile = file };
    }

    private async Task<Uri> StartServerAsync(X509Certificate2 certificate)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        // Offline: the server itself must not look for its issuer either, or its fetch would be counted.
        var context = SslStreamCertificateContext.Create(certificate, null, offline: true);
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(new TlsHandshakeCallbackOptions
        {
            OnConnection = _ => ValueTask.FromResult(new SslServerAuthenticationOptions { ServerCertificateContext = context }),
        })));
        _server = builder.Build();
        _server.MapGet("/", () => "identity");
        await _server.StartAsync();
        return new Uri(_server.Urls.Single().Replace("127.0.0.1", "localhost", StringComparison.Ordinal));
    }
}
