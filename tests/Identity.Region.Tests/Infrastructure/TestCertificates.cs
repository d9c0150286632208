using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Region.Tests.Infrastructure;

/// <summary>Certificates made in the test: a services CA, client certificates it issues, self-signed ones, a TLS server's.</summary>
public static class TestCertificates
{
    public static X509Certificate2 Authority(string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        AddAuthorityExtensions(request, pathLength: null);
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddDays(-60), now.AddYears(1));
    }

    /// <summary>A root CA with an RSA 2048 key: what it issues, and its CRLs, are signed RSA PKCS#1 v1.5 with SHA-256.</summary>
    public static X509Certificate2 RsaAuthority(string subject)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        AddAuthorityExtensions(request, pathLength: null);
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddDays(-60), now.AddYears(1));
    }

    /// <summary>An intermediate CA (P-256, path length 0) issued by <paramref name="issuer"/> (an RSA or EC CA).</summary>
    public static X509Certificate2 IntermediateAuthority(X509Certificate2 issuer, string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        AddAuthorityExtensions(request, pathLength: 0);
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));
        var now = DateTimeOffset.UtcNow;
        using var issued = Issue(request, issuer, now.AddDays(-30), now.AddMonths(6));
        using var withKey = issued.CopyWithPrivateKey(key);
        return Reload(withKey);
    }

    /// <summary>
    /// A client certificate (clientAuth) issued by <paramref name="issuer"/>, with <paramref name="san"/> if given, valid
    /// from two days ago for a month unless told.
    /// </summary>
    public static X509Certificate2 Client(
        X509Certificate2 issuer, string subject, DateTimeOffset? notAfter = null, DateTimeOffset? notBefore = null, SubjectAlternativeNameBuilder? san = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = ClientRequest(subject, key, san);
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));
        var now = DateTimeOffset.UtcNow;
        using var issued = Issue(request, issuer, notBefore ?? now.AddDays(-2), notAfter ?? now.AddDays(30));
        using var withKey = issued.CopyWithPrivateKey(key);
        return Reload(withKey);
    }

    /// <summary>A self-signed client certificate (clientAuth), valid from yesterday for a month unless told.</summary>
    public static X509Certificate2 SelfSignedClient(string subject, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var now = DateTimeOffset.UtcNow;
        using var certificate = ClientRequest(subject, key, null).CreateSelfSigned(notBefore ?? now.AddDays(-1), notAfter ?? now.AddDays(30));
        return Reload(certificate);
    }

    public static X509Certificate2 Server()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false)); // serverAuth
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
        return Reload(certificate);
    }

    /// <summary>RFC 8705 §3.1: base64url of the SHA-256 of the DER certificate, computed here independently.</summary>
    /// <summary>
    /// A TLS server certificate (serverAuth) issued by <paramref name="issuer"/> for <paramref name="san"/> (default:
    /// localhost and 127.0.0.1), valid from yesterday for a month.
    /// </summary>
    public static X509Certificate2 Server(X509Certificate2 issuer, SubjectAlternativeNameBuilder? san = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false)); // serverAuth
        if (san is null)
        {
            san = new SubjectAlternativeNameBuilder();
            san.AddDnsName("localhost");
            san.AddIpAddress(System.Net.IPAddress.Loopback);
        }

        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));
        var now = DateTimeOffset.UtcNow;
        using var issued = Issue(request, issuer, now.AddDays(-1), now.AddDays(30));
        using var withKey = issued.CopyWithPrivateKey(key);
        return Reload(withKey);
    }

    public static string Thumbprint(X509Certificate2 certificate) => Base64UrlEncoder.Encode(SHA256.HashData(certificate.RawData));

    private static CertificateRequest ClientRequest(string subject, ECDsa key, SubjectAlternativeNameBuilder? san)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false)); // clientAuth
        if (san is not null)
        {
            request.CertificateExtensions.Add(san.Build());
        }

        return request;
    }

    private static void AddAuthorityExtensions(CertificateRequest request, int? pathLength)
    {
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, pathLength is not null, pathLength ?? 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
    }

    /// <summary>Signed with <paramref name="issuer"/>'s key: ECDSA, or RSA with PKCS#1 v1.5 padding.</summary>
    private static X509Certificate2 Issue(CertificateRequest request, X509Certificate2 issuer, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        var serial = RandomNumberGenerator.GetBytes(16);
        using var rsa = issuer.GetRSAPrivateKey();
        return rsa is null
            ? request.Create(issuer, notBefore, notAfter, serial)
            : request.Create(issuer.SubjectName, X509SignatureGenerator.CreateForRSA(rsa, RSASignaturePadding.Pkcs1), notBefore, notAfter, serial);
    }

    /// <summary>Through PKCS#12, so that SslStream can use the private key.</summary>
    private static X509Certificate2 Reload(X509Certificate2 certificate) =>
        X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);

    /// <summary>
    /// A client certificate issued by <paramref name="issuer"/> whose issuer (AIA caIssuers), OCSP responder and CRL
    /// (CDP) all point at <paramref name="url"/> (RFC 5280 §4.2.2.1, §4.2.1.13): what a server must never fetch.
    /// With <paramref name="subject"/> equal to the issuer's name, the certificate looks self-signed by its names
    /// while another key signed it (its key identifiers tell the two apart).
    /// </summary>
    public static X509Certificate2 ClientPointingAt(X509Certificate2 issuer, string url, string subject = "CN=orders.eu, O=Example") =>
        PointingAt(issuer, url, subject, "1.3.6.1.5.5.7.3.2", san: null); // clientAuth

    /// <summary>A TLS server certificate for localhost / 127.0.0.1 like <see cref="ClientPointingAt"/>.</summary>
    public static X509Certificate2 ServerPointingAt(X509Certificate2 issuer, string url)
    {
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        return PointingAt(issuer, url, "CN=localhost", "1.3.6.1.5.5.7.3.1", san); // serverAuth
    }

    private static X509Certificate2 PointingAt(X509Certificate2 issuer, string url, string subject, string usage, SubjectAlternativeNameBuilder? san)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], false));
        if (san is not null)
        {
            request.CertificateExtensions.Add(san.Build());
        }

        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));
        request.CertificateExtensions.Add(new X509AuthorityInformationAccessExtension([$"{url}ocsp"], [$"{url}issuer.cer"]));
        request.CertificateExtensions.Add(CertificateRevocationListBuilder.BuildCrlDistributionPointExtension([$"{url}issuer.crl"]));
        var now = DateTimeOffset.UtcNow;
        using var issued = request.Create(issuer, now.AddDays(-1), now.AddDays(30), RandomNumberGenerator.GetBytes(16));
        using var withKey = issued.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }
}
