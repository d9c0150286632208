using System.Security.Cryptography.X509Certificates;

namespace Identity.Shared;

/// <summary>
/// The chain policy for the TLS layer of a listener that lets every client certificate through to the application,
/// which validates it itself (the authority's mTLS port; the regional library's <c>AskForClientCertificate</c>).
/// SslStream builds a chain for every client certificate on every connection, before any callback, and nothing there
/// decides on its verdict; with Kestrel's defaults that build loads the system roots, checks revocation online and
/// downloads the issuer, OCSP and CRL addresses the client wrote into its certificate. This policy trusts nothing
/// (an empty custom root store), checks no revocation and downloads nothing (decision 0062). Compiled into the server
/// and the regional library, as <see cref="ForwardedCertificateHeader"/> is.
/// </summary>
internal static class TlsLayerChainPolicy
{
    /// <summary>
    /// A new policy for one connection: SslStream adds the certificates the client sent to the policy's
    /// <c>ExtraStore</c>, so a shared one would grow and be written from many connections at once.
    /// </summary>
    public static X509ChainPolicy ForOneConnection() => new()
    {
        TrustMode = X509ChainTrustMode.CustomRootTrust,
        RevocationMode = X509RevocationMode.NoCheck,
        DisableCertificateDownloads = true,
    };
}
