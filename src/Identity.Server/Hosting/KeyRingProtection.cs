using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.DataProtection;

namespace Identity.Server.Hosting;

/// <summary>A certificate and its private key, as PEM files (the shape Kubernetes secrets and most CAs hand out).</summary>
public class PemCertificateFiles
{
    public string? CertificateFile { get; set; }

    /// <summary>The unencrypted PKCS#8 or PKCS#1 private key; protect the file, not the key.</summary>
    public string? KeyFile { get; set; }
}

/// <summary>
/// The <c>DataProtection</c> section: how the data-protection key ring is protected at rest. That ring lives in the
/// database beside what it protects (session cookies, anti-forgery tokens, and the private material of the token
/// signing keys), so whoever reads a database backup could otherwise sign tokens. With a certificate, every key of the
/// ring is encrypted to the certificate's RSA public key before it is written (XML Encryption); the private key stays
/// in a file on the servers, never in the database.
/// </summary>
public sealed class KeyRingProtectionOptions : PemCertificateFiles
{
    public const string SectionName = "DataProtection";

    /// <summary>Certificates that protected the ring before (after a certificate rotation): still used to read older keys.</summary>
    public List<PemCertificateFiles> PreviousCertificates { get; set; } = [];

    /// <summary>
    /// Outside Development a server without a certificate refuses to start, unless this says that the database's own
    /// access control (and encryption at rest) is accepted as the only protection of the key ring.
    /// </summary>
    public bool AllowUnprotectedKeys { get; set; }
}

public static class KeyRingProtection
{
    /// <summary>Applies <see cref="KeyRingProtectionOptions"/>; throws, naming the setting, when it is incomplete or unreadable.</summary>
    public static IDataProtectionBuilder ProtectKeyRing(this IDataProtectionBuilder dataProtection, IConfiguration configuration, IHostEnvironment environment)
    {
        var options = configuration.GetSection(KeyRingProtectionOptions.SectionName).Get<KeyRingProtectionOptions>() ?? new KeyRingProtectionOptions();
        if (options.CertificateFile is null && options.KeyFile is null)
        {
            if (!environment.IsDevelopment() && !options.AllowUnprotectedKeys)
            {
                throw new InvalidOperationException(
                    "The data-protection key ring (which protects the token signing keys) would be stored unencrypted in the database. " +
                    "Set DataProtection:CertificateFile and DataProtection:KeyFile (an RSA certificate and its private key, PEM), " +
                    "or DataProtection:AllowUnprotectedKeys=true to rely on the database's access control alone.");
            }

            return dataProtection;
        }

        var current = Load(options, $"{KeyRingProtectionOptions.SectionName}");
        var previous = options.PreviousCertificates
            .Select((files, i) => Load(files, $"{KeyRingProtectionOptions.SectionName}:PreviousCertificates:{i}"))
            .ToArray();

        dataProtection.ProtectKeysWithCertificate(current);
        dataProtection.UnprotectKeysWithAnyCertificate([current, .. previous]);
        return dataProtection;
    }

    private static X509Certificate2 Load(PemCertificateFiles files, string path)
    {
        if (string.IsNullOrEmpty(files.CertificateFile) || string.IsNullOrEmpty(files.KeyFile))
        {
            throw new InvalidOperationException($"{path}: set both CertificateFile and KeyFile (PEM).");
        }

        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPemFile(files.CertificateFile, files.KeyFile);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw new InvalidOperationException($"{path}: the certificate or its key cannot be read ({ex.Message}).", ex);
        }

        // XML Encryption of the key ring wraps each key with RSA-OAEP: an RSA key is required.
        using var rsa = certificate.GetRSAPrivateKey();
        if (rsa is null)
        {
            throw new InvalidOperationException($"{path}: the certificate must have an RSA key (with its private key in KeyFile).");
        }

        return certificate;
    }
}
