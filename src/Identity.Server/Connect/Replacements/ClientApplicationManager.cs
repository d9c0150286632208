using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Identity.Server.Clients;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Core;
using OpenIddict.EntityFrameworkCore.Models;

namespace Identity.Server.Connect.Replacements;

/// <summary>
/// OpenIddict's application manager with two changes measured on the token endpoint:
/// <list type="bullet">
/// <item>client lookups by <c>client_id</c> are served from a process-wide cache for
/// <see cref="OidcOptions.ApplicationCacheDuration"/> (OpenIddict's own cache lasts one request, so every token request
/// read the application row); a change made through this manager evicts the entry at once, other replicas
/// see it when their entry expires;</item>
/// <item>client secrets are hashed with <see cref="ClientSecretHasher"/> instead of PBKDF2.</item>
/// </list>
/// </summary>
public sealed class ClientApplicationManager(
    IOpenIddictApplicationCache<OpenIddictEntityFrameworkCoreApplication> cache,
    ILogger<OpenIddictApplicationManager<OpenIddictEntityFrameworkCoreApplication>> logger,
    IOptionsMonitor<OpenIddictCoreOptions> options,
    IOpenIddictApplicationStore<OpenIddictEntityFrameworkCoreApplication> store,
    ClientApplicationCache clients,
    IOptionsMonitor<OidcOptions> oidc,
    ClientCertificateVerdict verdict,
    ClientCertificateValidationCache validations,
    ClientCertificateRevocation revocation)
    : OpenIddictApplicationManager<OpenIddictEntityFrameworkCoreApplication>(cache, logger, options, store)
{
    // The copy handed out in this scope (one request), reused by every later lookup of the same client in it.
    // A token request looks its client up ~10 times (each OpenIddict validation handler, the principal preparation,
    // our scope check); cloning each time cost ~7 % of the server's CPU (~13 µs/token, perf: the entity's constructor
    // draws a Guid.NewGuid() concurrency token and allocates its navigation sets). OpenIddict's own per-scope entity
    // cache also hands the same instance to every caller in a scope, so requests stay isolated from one another.
    private OpenIddictEntityFrameworkCoreApplication? _scoped;
    private long _scopedUntil;

    public override async ValueTask<OpenIddictEntityFrameworkCoreApplication?> FindByClientIdAsync(
        string identifier, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(identifier);
        if (_scoped is { } scoped && string.Equals(scoped.ClientId, identifier, StringComparison.Ordinal)
            && Environment.TickCount64 < _scopedUntil)
        {
            return scoped;
        }

        var duration = oidc.CurrentValue.ApplicationCacheDuration;
        if (clients.TryGet(identifier) is { } cached)
        {
            return Remember(cached.Clone(), duration);
        }

        // Only found clients are cached: a client created anywhere is usable at once on every replica.
        var application = await base.FindByClientIdAsync(identifier, cancellationToken);
        if (application is not null)
        {
            clients.Set(identifier, application.Clone(), duration);
            Remember(application, duration);
        }

        return application;
    }

    public override async ValueTask UpdateAsync(
        OpenIddictEntityFrameworkCoreApplication application, CancellationToken cancellationToken = default)
    {
        _scoped = null;
        await base.UpdateAsync(application, cancellationToken);
        clients.Evict(application.ClientId);
    }

    public override async ValueTask DeleteAsync(
        OpenIddictEntityFrameworkCoreApplication application, CancellationToken cancellationToken = default)
    {
        _scoped = null;
        await base.DeleteAsync(application, cancellationToken);
        clients.Evict(application.ClientId);
    }

    /// <summary>Keeps <paramref name="application"/> for this scope, never longer than the process-wide cache would.</summary>
    private OpenIddictEntityFrameworkCoreApplication Remember(OpenIddictEntityFrameworkCoreApplication application, TimeSpan duration)
    {
        if (duration > TimeSpan.Zero)
        {
            _scoped = application;
            _scopedUntil = Environment.TickCount64 + (long)duration.TotalMilliseconds;
        }

        return application;
    }

    /// <summary>
    /// A <c>tls_client_auth</c> client is confidential with neither a secret nor a JWKS: its registered certificate name
    /// is its credential (RFC 8705 §2.1), so OpenIddict's "a confidential client needs a secret or a key" does not apply.
    /// </summary>
    public override async IAsyncEnumerable<System.ComponentModel.DataAnnotations.ValidationResult> ValidateAsync(
        OpenIddictEntityFrameworkCoreApplication application,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var missingCredential = OpenIddictResources.GetResourceString(OpenIddictResources.ID2113);
        var certificateClient = ClientCertificateIdentity.From(await GetPropertiesAsync(application, cancellationToken)) is not null;
        await foreach (var result in base.ValidateAsync(application, cancellationToken))
        {
            if (!(certificateClient && result.ErrorMessage == missingCredential))
            {
                yield return result;
            }
        }
    }

    /// <summary>
    /// <c>self_signed_tls_client_auth</c> (RFC 8705 §2.2): the certificates in the client's JWKS (<c>x5c</c>) are the ones
    /// it may present. OpenIddict only reads <c>x5c</c> from RSA keys (IdentityModel converts an EC key with x5c to a
    /// bare EC key); the certificates of EC keys are added here.
    /// </summary>
    /// <summary>A refused self-signed certificate: the reason is recorded for the response, the audit row and the counter.</summary>
    public override async ValueTask<bool> ValidateSelfSignedTlsClientCertificateAsync(
        OpenIddictEntityFrameworkCoreApplication application, X509Certificate2 certificate, X509ChainPolicy policy,
        CancellationToken cancellationToken = default)
    {
        if (await base.ValidateSelfSignedTlsClientCertificateAsync(application, certificate, policy, cancellationToken))
        {
            return true;
        }

        // A tls_client_auth client's certificate comes from a trusted CA, never from its holder.
        var pki = ClientCertificateIdentity.From(await GetPropertiesAsync(application, cancellationToken)) is not null;
        verdict.Refuse(ValidityRefusal(certificate)
            ?? (await RegisteredForAnotherClientAsync(application, certificate, cancellationToken) ? CertificateRefusal.AnotherClient
            : pki ? CertificateRefusal.UntrustedCa : CertificateRefusal.NotRegistered));
        return false;
    }

    public override async ValueTask<X509ChainPolicy?> GetSelfSignedTlsClientAuthenticationPolicyAsync(
        OpenIddictEntityFrameworkCoreApplication application, X509ChainPolicy policy, CancellationToken cancellationToken = default)
    {
        var derived = await base.GetSelfSignedTlsClientAuthenticationPolicyAsync(application, policy, cancellationToken);
        if (derived is null || await GetJsonWebKeySetAsync(application, cancellationToken) is not { } set)
        {
            return derived;
        }

        foreach (var key in set.Keys.Where(k => k.Kty != "RSA" && k.X5c.Count > 0 && (string.IsNullOrEmpty(k.Use) || k.Use == "sig")))
        {
            try
            {
                var certificate = X509CertificateLoader.LoadCertificate(Convert.FromBase64String(key.X5c[0]));
                if (certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData)
                    && !derived.CustomTrustStore.Contains(certificate))
                {
                    derived.CustomTrustStore.Add(certificate);
                }
            }
            catch (Exception ex) when (ex is FormatException or CryptographicException)
            {
                Logger.LogInformation("Client {ClientId}: a JWKS x5c entry is not a certificate.", application.ClientId);
            }
        }

        return derived;
    }

    /// <summary>
    /// <c>tls_client_auth</c> (RFC 8705 §2.1): the chain must lead to a CA of the trusted bundle (OpenIddict's policy)
    /// and the certificate must name the client as registered (subject DN or SAN). OpenIddict's own rule, a SAN matching
    /// a redirect URI's host, does not fit services without redirect URIs and is not used.
    /// </summary>
    public override async ValueTask<bool> ValidatePublicKeyInfrastructureTlsClientCertificateAsync(
        OpenIddictEntityFrameworkCoreApplication application, X509Certificate2 certificate, X509ChainPolicy policy,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(application);
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(policy);
        var registered = ClientCertificateIdentity.From(await GetPropertiesAsync(application, cancellationToken));
        if (ValidityRefusal(certificate) is { } outdated)
        {
            Logger.LogInformation("Client {ClientId}: certificate refused ({Reason}).", application.ClientId, outdated);
            verdict.Refuse(outdated);
            return false;
        }

        if (registered is null)
        {
            Logger.LogInformation("Client {ClientId} presented a certificate but has no registered certificate name.", application.ClientId);
            verdict.Refuse(await RegisteredForAnotherClientAsync(application, certificate, cancellationToken)
                ? CertificateRefusal.AnotherClient : CertificateRefusal.NotRegistered);
            return false;
        }

        // Its issuer's CRL (Mtls:CrlFile), checked every time: a revoked serial, or a CRL past its nextUpdate (fail closed).
        if (revocation.Refusal(certificate) is { } revoked)
        {
            Logger.LogInformation("Client {ClientId}: certificate refused ({Reason}).", application.ClientId, revoked);
            verdict.Refuse(revoked);
            return false;
        }

        // The same client with the same certificate a moment ago: its chain and name were checked then (expiry above is
        // checked every time), so the chain is not built again (decision 0050).
        if (validations.IsValid(application.ClientId!, registered, certificate))
        {
            return true;
        }

        using var chain = new X509Chain { ChainPolicy = policy };
        try
        {
            if (!chain.Build(certificate))
            {
                Logger.LogInformation("Client {ClientId}: certificate chain refused ({Status}).", application.ClientId,
                    string.Join(", ", chain.ChainStatus.Select(s => s.Status)));
                verdict.Refuse(chain.ChainStatus.Any(s => s.Status.HasFlag(X509ChainStatusFlags.Revoked))
                    ? CertificateRefusal.Revoked : CertificateRefusal.UntrustedCa);
                return false;
            }

            // The intermediates of the chain, by their issuers' CRLs (the leaf was checked above).
            if (chain.ChainElements.Skip(1).Select(e => revocation.Refusal(e.Certificate)).FirstOrDefault(r => r is not null) is { } refused)
            {
                Logger.LogInformation("Client {ClientId}: an intermediate CA of the certificate is refused ({Reason}).", application.ClientId, refused);
                verdict.Refuse(refused);
                return false;
            }

            if (!registered.Matches(certificate))
            {
                Logger.LogInformation("Client {ClientId}: certificate {Subject} does not carry the registered name.",
                    application.ClientId, certificate.Subject);
                verdict.Refuse(await RegisteredForAnotherClientAsync(application, certificate, cancellationToken)
                    ? CertificateRefusal.AnotherClient : CertificateRefusal.NameMismatch);
                return false;
            }

            validations.Remember(application.ClientId!, registered, certificate);
            return true;
        }
        catch (CryptographicException exception)
        {
            Logger.LogInformation(exception, "Client {ClientId}: certificate chain could not be built.", application.ClientId);
            verdict.Refuse(CertificateRefusal.UntrustedCa);
            return false;
        }
        finally
        {
            foreach (var element in chain.ChainElements)
            {
                element.Certificate.Dispose();
            }
        }
    }

    private static string? ValidityRefusal(X509Certificate2 certificate)
    {
        var now = DateTime.Now; // NotBefore and NotAfter are local times
        return now > certificate.NotAfter ? CertificateRefusal.Expired
            : now < certificate.NotBefore ? CertificateRefusal.NotYetValid
            : null;
    }

    /// <summary>
    /// Whether <paramref name="certificate"/> is the one another client registered (its tls_client_auth name, or in its
    /// JWKS): a service presenting a neighbour's certificate is worth telling apart. Only refusals pay for this query.
    /// </summary>
    private async ValueTask<bool> RegisteredForAnotherClientAsync(
        OpenIddictEntityFrameworkCoreApplication application, X509Certificate2 certificate, CancellationToken cancellationToken)
    {
        var selfIssued = certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData);
        var encoded = Convert.ToBase64String(certificate.RawData);
        var clientId = application.ClientId;
        await foreach (var other in ListAsync(applications => applications.Where(a => a.ClientId != clientId
            && (a.Properties!.Contains(ClientCertificateIdentity.Property) || a.JsonWebKeySet!.Contains("x5c"))), cancellationToken))
        {
            var registered = selfIssued
                ? (await GetJsonWebKeySetAsync(other, cancellationToken))?.Keys.Any(k => k.X5c.Contains(encoded)) == true
                : ClientCertificateIdentity.From(await GetPropertiesAsync(other, cancellationToken))?.Matches(certificate) == true;
            if (registered)
            {
                return true;
            }
        }

        return false;
    }

    protected override ValueTask<string> ObfuscateClientSecretAsync(string secret, CancellationToken cancellationToken = default)
        => ValueTask.FromResult(ClientSecretHasher.Hash(secret));

    protected override ValueTask<bool> ValidateClientSecretAsync(
        string secret, string comparand, CancellationToken cancellationToken = default)
        => ClientSecretHasher.IsOurs(comparand)
            ? ValueTask.FromResult(ClientSecretHasher.Verify(secret, comparand))
            : base.ValidateClientSecretAsync(secret, comparand, cancellationToken);
}

/// <summary>Process-wide, size-bounded cache of application rows by client_id.</summary>
public sealed class ClientApplicationCache : IDisposable
{
    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = 10_000 });

    public OpenIddictEntityFrameworkCoreApplication? TryGet(string clientId) =>
        _cache.TryGetValue(clientId, out OpenIddictEntityFrameworkCoreApplication? application) ? application : null;

    public void Set(string clientId, OpenIddictEntityFrameworkCoreApplication application, TimeSpan duration)
    {
        if (duration > TimeSpan.Zero)
        {
            _cache.Set(clientId, application, new MemoryCacheEntryOptions
            {
                AbsoluteExpirationRelativeToNow = duration,
                Size = 1,
            });
        }
    }

    public void Evict(string? clientId)
    {
        if (clientId is not null)
        {
            _cache.Remove(clientId);
        }
    }

    public void Dispose() => _cache.Dispose();
}

internal static class ApplicationCloning
{
    /// <summary>Each caller gets its own copy, so no request can change another request's view of a client.</summary>
    public static OpenIddictEntityFrameworkCoreApplication Clone(this OpenIddictEntityFrameworkCoreApplication source) => new()
    {
        Id = source.Id,
        ApplicationType = source.ApplicationType,
        ClientId = source.ClientId,
        ClientSecret = source.ClientSecret,
        ClientType = source.ClientType,
        ConcurrencyToken = source.ConcurrencyToken,
        ConsentType = source.ConsentType,
        DisplayName = source.DisplayName,
        DisplayNames = source.DisplayNames,
        JsonWebKeySet = source.JsonWebKeySet,
        Permissions = source.Permissions,
        PostLogoutRedirectUris = source.PostLogoutRedirectUris,
        Properties = source.Properties,
        RedirectUris = source.RedirectUris,
        Requirements = source.Requirements,
        Settings = source.Settings,
    };
}
