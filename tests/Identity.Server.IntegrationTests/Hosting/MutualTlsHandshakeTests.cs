using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Identity.Region.Tests.Infrastructure;
using Identity.Server.IntegrationTests.Connect;

namespace Identity.Server.IntegrationTests.Hosting;

/// <summary>
/// What the mTLS port's TLS layer does with a client certificate on each connection (decision 0062): it lets every
/// certificate through to the authorization server, which validates it per client, and does no work of its own that a
/// client could steer.
/// </summary>
public sealed class MutualTlsHandshakeTests(MutualTlsTests.MutualTlsServer server) : IClassFixture<MutualTlsTests.MutualTlsServer>
{
    [Fact]
    public async Task MtlsPort_CertificateNamingIssuerAndRevocationUrls_ServerFetchesNoneAndRefusesTheClient()
    {
        // Arrange: a web server the certificate points at, and a certificate of a CA the server does not know whose
        // issuer (AIA caIssuers), OCSP responder (AIA) and CRL (CDP) are on that web server (RFC 5280 §4.2.2.1, §4.2.1.13).
        using var web = new CountingWebServer();
        using var unknownCa = TestCertificates.Authority("CN=Unknown CA");
        using var certificate = ClientPointingAt(unknownCa, web.Url);

        // Act: a token request over the mTLS port with it (the client side told not to fetch its own issuer either).
        using var client = OfflineClient(certificate);
        var (status, body) = await server.TokenAsync(client, "svc-pki");

        // Assert: refused by the authorization server (RFC 6749 §5.2), and the server never contacted the addresses
        // the client wrote into its certificate (with Kestrel's defaults, every handshake fetched them).
        Assert.True(status == HttpStatusCode.Unauthorized, body.ToString());
        Assert.Equal("invalid_client", body.GetProperty("error").GetString());
        Assert.Empty(web.Requests);
    }

    /// <summary>
    /// An HTTP client presenting <paramref name="certificate"/> without looking for its issuer: SslStream's client
    /// otherwise builds the certificate's chain to send its intermediates, fetching the AIA issuer itself.
    /// </summary>
    private HttpClient OfflineClient(X509Certificate2 certificate)
    {
        var serverCertificate = server.ServerTlsCertificate;
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, presented, _, _) =>
                    presented is not null && presented.GetCertHashString() == serverCertificate.GetCertHashString(),
                ClientCertificateContext = SslStreamCertificateContext.Create(certificate, null, offline: true),
            },
        };
        return new HttpClient(handler) { BaseAddress = server.Mtls };
    }

    private static X509Certificate2 ClientPointingAt(X509Certificate2 issuer, string url)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=orders.eu, O=Example", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false)); // clientAuth
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));
        request.CertificateExtensions.Add(new X509AuthorityInformationAccessExtension([$"{url}ocsp"], [$"{url}issuer.cer"]));
        request.CertificateExtensions.Add(CertificateRevocationListBuilder.BuildCrlDistributionPointExtension([$"{url}issuer.crl"]));
        var now = DateTimeOffset.UtcNow;
        using var issued = request.Create(issuer, now.AddDays(-1), now.AddDays(30), RandomNumberGenerator.GetBytes(16));
        using var withKey = issued.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>An HTTP server on a loopback port that answers every request 404 and keeps its request lines.</summary>
    private sealed class CountingWebServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _requests = new();

        public CountingWebServer()
        {
            _listener.Start();
            Url = $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/";
            _ = AcceptAsync();
        }

        public string Url { get; }

        public IReadOnlyCollection<string> Requests => _requests;

        private async Task AcceptAsync()
        {
            try
            {
                while (!_stop.IsCancellationRequested)
                {
                    using var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    var stream = client.GetStream();
                    var buffer = new byte[4096];
                    var read = await stream.ReadAsync(buffer, _stop.Token);
                    _requests.Enqueue(System.Text.Encoding.ASCII.GetString(buffer, 0, read).Split('\r')[0]);
                    await stream.WriteAsync("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray(), _stop.Token);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException or IOException)
            {
                // stopped
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
            _stop.Dispose();
        }
    }
}
