using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Identity.Messaging;

/// <summary>Loads the broker's CA and a client certificate, and checks the broker's certificate against that CA only.</summary>
public static class BrokerCertificates
{
    private static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1", "Server Authentication");

    public static X509Certificate2 LoadCaCertificate(string pemPath) => X509CertificateLoader.LoadCertificateFromFile(pemPath);

    public static X509Certificate2 LoadClientCertificate(string pfxPath, string? password)
    {
        var certificate = X509CertificateLoader.LoadPkcs12FromFile(pfxPath, password);
        if (!certificate.HasPrivateKey)
        {
            certificate.Dispose();
            throw new CryptographicException($"'{pfxPath}' holds no private key: a client certificate needs one.");
        }

        return certificate;
    }

    /// <summary>
    /// A TLS validation callback that accepts the broker only with a certificate for the expected name, issued
    /// (directly or through the chain it presents) by <paramref name="ca"/>, for server authentication.
    /// Always set it: with no callback the client completed a handshake with a broker whose certificate came
    /// from an unknown CA (seen with RabbitMQ 3.10 on Debian), and the machine's root store must not vouch for the broker either.
    /// </summary>
    public static RemoteCertificateValidationCallback TrustOnly(X509Certificate2 ca) =>
        (_, certificate, chain, errors) => IsIssuedBy(ca, certificate, chain, errors);

    private static bool IsIssuedBy(X509Certificate2 ca, X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors)
    {
        // The platform still checks the name (ServerName against the SAN); only the trust decision is ours.
        if (certificate is null
            || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable)
            || errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch))
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        // A private CA publishes no revocation list; a compromised broker key means a new CA.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        // The broker's chain is what it sent and the CA: never the issuer address its certificate names (0067).
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.ApplicationPolicy.Add(ServerAuthentication);
        if (presented is not null)
        {
            foreach (var element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        if (certificate is X509Certificate2 leaf)
        {
            return chain.Build(leaf);
        }

        using var copy = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(copy);
    }
}
