using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace Identity.Region.Tokens;

/// <summary>
/// A client certificate with its private key and intermediates, ready for TLS, and its RFC 8705 §3.1 thumbprint
/// (<c>x5t#S256</c>: base64url of the SHA-256 of the DER certificate), which a token bound to it carries in <c>cnf</c>.
/// </summary>
public sealed class ClientCertificate : IDisposable
{
    private ClientCertificate(X509Certificate2 leaf, X509Certificate2Collection intermediates)
    {
        Certificate = leaf;
        Intermediates = intermediates;
        // offline: the chain is sent as given, nothing is downloaded (a private CA has no AIA to follow).
        Context = SslStreamCertificateContext.Create(leaf, intermediates, offline: true);
        Thumbprint = Base64Url(SHA256.HashData(leaf.RawData));
    }

    public X509Certificate2 Certificate { get; }

    /// <summary>What TLS sends: the certificate and its intermediates.</summary>
    public SslStreamCertificateContext Context { get; }

    /// <summary>The <c>x5t#S256</c> of the certificate (RFC 8705 §3.1).</summary>
    public string Thumbprint { get; }

    private X509Certificate2Collection Intermediates { get; }

    /// <summary>Reads <see cref="IdentityTokenClientOptions.CertificateFile"/>: PKCS#12 by its extension, else PEM.</summary>
    public static ClientCertificate Load(IdentityTokenClientOptions options)
    {
        var file = options.CertificateFile ?? throw new ArgumentException("No CertificateFile.", nameof(options));
        var collection = new X509Certificate2Collection();
        X509Certificate2 leaf;
        if (IsPkcs12(file))
        {
            collection = X509CertificateLoader.LoadPkcs12CollectionFromFile(file, options.CertificatePassword);
            leaf = collection.FirstOrDefault(c => c.HasPrivateKey)
                ?? throw new CryptographicException("The PKCS#12 file holds no certificate with a private key.");
            collection.Remove(leaf);
        }
        else
        {
            // The first certificate of the file is the client's; the ones after it are its intermediates.
            using var pem = X509Certificate2.CreateFromPemFile(file, string.IsNullOrEmpty(options.CertificateKeyFile) ? null : options.CertificateKeyFile);
            // An ephemeral (PEM-imported) key cannot be used by SslStream on every platform: through PKCS#12 it can.
            leaf = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
            collection.ImportFromPemFile(file);
            foreach (var same in collection.Where(c => c.RawData.AsSpan().SequenceEqual(leaf.RawData)).ToList())
            {
                collection.Remove(same);
                same.Dispose();
            }
        }

        return new ClientCertificate(leaf, collection);
    }

    /// <summary>A PEM bundle of CA certificates, or null when the file holds none.</summary>
    public static X509Certificate2Collection? LoadBundle(string file)
    {
        try
        {
            var bundle = new X509Certificate2Collection();
            bundle.ImportFromPemFile(file);
            return bundle.Count == 0 ? null : bundle;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>
    /// Server certificate validation against a private CA bundle as well as the system's roots: the host name must
    /// match in either case (RFC 9110 §4.3.4); only the chain may end at one of <paramref name="trusted"/> instead.
    /// </summary>
    internal static RemoteCertificateValidationCallback ServerValidation(X509Certificate2Collection trusted) =>
        (_, certificate, presented, errors) =>
        {
            if (errors == SslPolicyErrors.None)
            {
                return true;
            }

            if (certificate is not X509Certificate2 server || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != 0)
            {
                return false;
            }

            using var chain = new X509Chain { ChainPolicy = ServerChainPolicy() };
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            foreach (var ca in trusted)
            {
                (ca.SubjectName.RawData.AsSpan().SequenceEqual(ca.IssuerName.RawData) ? chain.ChainPolicy.CustomTrustStore : chain.ChainPolicy.ExtraStore).Add(ca);
            }

            if (presented is not null)
            {
                chain.ChainPolicy.ExtraStore.AddRange(presented.ChainElements.Select(e => e.Certificate).Skip(1).ToArray());
            }

            return chain.Build(server);
        };

    /// <summary>
    /// The chain policy of the token client's connections to Identity (SslStream's own build, then
    /// <see cref="ServerValidation"/>'s): no revocation, as HttpClient's default, and no downloads. A server's
    /// chain is what it sends (TLS 1.3 §4.4.2) plus the trusted bundle; on Linux .NET would otherwise fetch the
    /// issuer address written in the server's certificate, one that whoever answers the connection chose (0067).
    /// </summary>
    internal static X509ChainPolicy ServerChainPolicy() => new()
    {
        RevocationMode = X509RevocationMode.NoCheck,
        DisableCertificateDownloads = true,
    };

    private static bool IsPkcs12(string file) =>
        file.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || file.EndsWith(".p12", StringComparison.OrdinalIgnoreCase);

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public void Dispose()
    {
        Certificate.Dispose();
        foreach (var intermediate in Intermediates)
        {
            intermediate.Dispose();
        }
    }
}

/// <summary>
/// The client certificate of one token client as it is now: its files are looked at again at most every
/// <see cref="IdentityTokenClientOptions.CertificateReloadInterval"/>, and a changed certificate replaces the old one
/// (a rotation by the platform: a renewed secret mounted over the old files). A file caught half-written is skipped
/// until the next look; the certificate in use stays.
/// </summary>
public sealed class ClientCertificateSource : IDisposable
{
    private readonly IdentityTokenClientOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _reload = new();
    private byte[] _files;
    private DateTimeOffset _nextCheck;
    private volatile ClientCertificate _current;
    private ClientCertificate? _retired;

    public ClientCertificateSource(IdentityTokenClientOptions options, TimeProvider time, ILogger logger)
    {
        _options = options;
        _time = time;
        _logger = logger;
        _files = ReadFiles();
        _current = ClientCertificate.Load(options);
        _nextCheck = time.GetUtcNow() + options.CertificateReloadInterval;
    }

    /// <summary>The certificate to present now (reloaded first if its files changed since the last look).</summary>
    public ClientCertificate Current
    {
        get
        {
            if (_time.GetUtcNow() >= _nextCheck)
            {
                Reload();
            }

            return _current;
        }
    }

    private void Reload()
    {
        lock (_reload)
        {
            var now = _time.GetUtcNow();
            if (now < _nextCheck)
            {
                return;
            }

            _nextCheck = now + _options.CertificateReloadInterval;
            try
            {
                var files = ReadFiles();
                if (files.AsSpan().SequenceEqual(_files))
                {
                    return;
                }

                var loaded = ClientCertificate.Load(_options);
                // The one before the previous is let go: connections made with the previous one may still be in use.
                _retired?.Dispose();
                _retired = _current;
                _current = loaded;
                _files = files;
                _logger.LogInformation("Client certificate of {ClientId} replaced: tokens are now requested for x5t#S256 {Thumbprint}.", _options.ClientId, loaded.Thumbprint);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or CryptographicException)
            {
                _logger.LogWarning("Client certificate of {ClientId} could not be read again ({Error}); the one in use stays.", _options.ClientId, e.GetType().Name);
            }
        }
    }

    /// <summary>What the certificate files hold now, to see whether they changed.</summary>
    private byte[] ReadFiles()
    {
        var certificate = File.ReadAllBytes(_options.CertificateFile!);
        return string.IsNullOrEmpty(_options.CertificateKeyFile) ? certificate : [.. certificate, .. File.ReadAllBytes(_options.CertificateKeyFile)];
    }

    public void Dispose()
    {
        _current.Dispose();
        _retired?.Dispose();
    }
}
