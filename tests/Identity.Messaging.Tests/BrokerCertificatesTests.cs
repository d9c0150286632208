using System.Net.Security;
using Identity.Region.Tests.Infrastructure;

namespace Identity.Messaging.Tests;

/// <summary>
/// The broker's certificate is checked against the configured CA from what the broker sent, never from the issuer
/// address its certificate names (decision 0067). No broker needed: the callback RabbitMQ's client calls.
/// </summary>
public sealed class BrokerCertificatesTests
{
    [Fact]
    public void TrustOnly_CertificateOfAnotherCaNamingUrls_RefusedWithoutFetching()
    {
        using var web = new CountingWebServer();
        using var ca = TestCertificates.Authority("CN=Broker CA");
        using var unknownCa = TestCertificates.Authority("CN=Unknown CA");
        using var certificate = TestCertificates.ServerPointingAt(unknownCa, web.Url);

        var accepted = BrokerCertificates.TrustOnly(ca)(this, certificate, null, SslPolicyErrors.RemoteCertificateChainErrors);

        Assert.False(accepted);
        Assert.Empty(web.Requests);
    }

    [Fact]
    public void TrustOnly_CertificateOfTheCaNamingUrls_AcceptedWithoutFetching()
    {
        using var web = new CountingWebServer();
        using var ca = TestCertificates.Authority("CN=Broker CA");
        using var certificate = TestCertificates.ServerPointingAt(ca, web.Url);

        var accepted = BrokerCertificates.TrustOnly(ca)(this, certificate, null, SslPolicyErrors.RemoteCertificateChainErrors);

        Assert.True(accepted);
        Assert.Empty(web.Requests);
    }
}
