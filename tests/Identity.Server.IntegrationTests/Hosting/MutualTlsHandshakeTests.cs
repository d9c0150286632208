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
        using var certificate = TestCertificates.ClientPointingAt(unknownCa, web.Url);

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
}
