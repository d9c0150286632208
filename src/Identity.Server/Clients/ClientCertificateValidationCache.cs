using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Identity.Server.Hosting;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace Identity.Server.Clients;

/// <summary>
/// Successful <c>tls_client_auth</c> validations (the chain to a trusted CA and the registered name), by client,
/// registered name and certificate, so that a service asking for token after token with one certificate does not have
/// its chain built on every request (an <see cref="X509Chain"/> build cost more than the rest of the mTLS token path:
/// decision 0050). Kept for <see cref="MutualTlsOptions.ValidationCacheDuration"/> and never past the certificate's
/// <c>NotAfter</c>; refusals are never kept, so a client that fixes its certificate is let in at once.
/// <see cref="Clear"/> forgets every entry: whatever changes what a chain validation would say (a new revocation list)
/// calls it.
/// </summary>
public sealed class ClientCertificateValidationCache(IOptionsMonitor<MutualTlsOptions> options, TimeProvider time) : IDisposable
{
    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = 10_000 });

    public bool IsValid(string clientId, ClientCertificateIdentity registered, X509Certificate2 certificate) =>
        _cache.TryGetValue(Key(clientId, registered, certificate), out DateTimeOffset until) && time.GetUtcNow() < until;

    public void Remember(string clientId, ClientCertificateIdentity registered, X509Certificate2 certificate)
    {
        var duration = options.CurrentValue.ValidationCacheDuration;
        if (duration <= TimeSpan.Zero)
        {
            return;
        }

        var until = time.GetUtcNow() + duration;
        var notAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        _cache.Set(Key(clientId, registered, certificate), until < notAfter ? until : notAfter, new MemoryCacheEntryOptions
        {
            AbsoluteExpirationRelativeToNow = duration,
            Size = 1,
        });
    }

    public void Clear() => _cache.Clear();

    public void Dispose() => _cache.Dispose();

    private static string Key(string clientId, ClientCertificateIdentity registered, X509Certificate2 certificate) =>
        $"{clientId}\n{registered.SubjectDn}\n{registered.SanDns}\n{registered.SanUri}\n{certificate.GetCertHashString(HashAlgorithmName.SHA256)}";
}
