using System.Collections.Concurrent;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Authentication.Certificate;
using Microsoft.Extensions.Options;

namespace Identity.Region.Validation;

/// <summary>
/// Keeps the Certificate handler's chain build off the network (decision 0067). The handler builds the caller's chain
/// with a policy of its own that leaves <see cref="X509ChainPolicy.DisableCertificateDownloads"/> off and offers no
/// event before the build: on Linux a chain whose issuer is not held locally is completed by downloading the issuer
/// named in the certificate's AIA extension, an address the caller chose. So the chain is first built here from the
/// same stores (the handler's trust mode, custom trust store and additional certificates, the machine's stores) with
/// downloads off; only a chain complete from those reaches the handler, whose own build then finds every issuer
/// locally and fetches nothing (.NET downloads only for an incomplete chain), and whose verdict on trust, use and
/// validity stands. Revocation is never checked online (<see cref="CertificateOptionsValidator"/>), so no CRL or
/// OCSP address is fetched either.
/// </summary>
public sealed class CallerCertificateChain
{
    private const int MaxRemembered = 1024;
    private static readonly TimeSpan Remembered = TimeSpan.FromMinutes(5);
    private readonly IOptionsMonitor<CertificateAuthenticationOptions> _options;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, (bool Complete, DateTimeOffset Until)> _verdicts = new(StringComparer.Ordinal);

    internal CallerCertificateChain(IOptionsMonitor<CertificateAuthenticationOptions> options, TimeProvider time)
    {
        _options = options;
        _time = time;
    }

    /// <summary>
    /// Whether every issuer of <paramref name="certificate"/>'s chain is held locally, so the handler's build needs
    /// nothing from the network; remembered per certificate for five minutes, as the handler's cache does.
    /// </summary>
    /// <param name="thumbprint">The SHA-256 of <paramref name="certificate"/>, which the binding check already computed.</param>
    internal bool IsCompleteLocally(X509Certificate2 certificate, ReadOnlySpan<byte> thumbprint)
    {
        var key = Convert.ToHexString(thumbprint);
        var now = _time.GetUtcNow();
        if (_verdicts.TryGetValue(key, out var known) && known.Until > now)
        {
            return known.Complete;
        }

        var complete = Build(certificate, _options.Get(IdentityBearerDefaults.CertificateScheme));
        if (_verdicts.Count >= MaxRemembered)
        {
            _verdicts.Clear();
        }

        _verdicts[key] = (complete, now + Remembered);
        return complete;
    }

    /// <summary>The handler's stores for this certificate (self-signed by its names or chained), downloads off.</summary>
    private static bool Build(X509Certificate2 certificate, CertificateAuthenticationOptions options)
    {
        using var chain = new X509Chain();
        var policy = chain.ChainPolicy;
        policy.DisableCertificateDownloads = true;
        policy.RevocationMode = X509RevocationMode.NoCheck;
        // Completeness only: trust, use and validity are the handler's verdict.
        policy.VerificationFlags = X509VerificationFlags.AllowUnknownCertificateAuthority | X509VerificationFlags.IgnoreNotTimeValid;
        if (certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData))
        {
            policy.ExtraStore.Add(certificate);
        }
        else
        {
            policy.CustomTrustStore.AddRange(options.CustomTrustStore);
            policy.TrustMode = options.ChainTrustValidationMode;
        }

        policy.ExtraStore.AddRange(options.AdditionalChainCertificates);
        try
        {
            chain.Build(certificate);
            return !chain.ChainStatus.Any(s => s.Status.HasFlag(X509ChainStatusFlags.PartialChain));
        }
        finally
        {
            foreach (var element in chain.ChainElements)
            {
                element.Certificate.Dispose();
            }
        }
    }
}

/// <summary>
/// The caller-certificate scheme never checks revocation online: the handler would fetch the CRL and OCSP addresses
/// written in callers' certificates. Identity checks revocation against its CRL when it issues a bound token; the
/// token's lifetime bounds the rest.
/// </summary>
internal sealed class CertificateOptionsValidator : IValidateOptions<CertificateAuthenticationOptions>
{
    public ValidateOptionsResult Validate(string? name, CertificateAuthenticationOptions options) =>
        name == IdentityBearerDefaults.CertificateScheme && options.RevocationMode == X509RevocationMode.Online
            ? ValidateOptionsResult.Fail($"The {IdentityBearerDefaults.CertificateScheme} scheme's RevocationMode must not be Online: it would fetch the CRL and OCSP addresses callers write into their certificates.")
            : ValidateOptionsResult.Success;
}
