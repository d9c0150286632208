using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Identity.Region.Tokens;

/// <summary>
/// One client-credentials client a regional service uses for its outgoing calls (named options: a service may have
/// several). Bound from <c>IdentityTokenClient</c> (or <c>IdentityTokenClient:{name}</c>) and validated at start.
/// </summary>
public sealed class IdentityTokenClientOptions
{
    public const string SectionName = "IdentityTokenClient";

    /// <summary>Identity's base URL (the issuer); the token endpoint is <c>{Authority}connect/token</c>.</summary>
    [Required(ErrorMessage = "IdentityTokenClient:Authority is required (Identity's URL, e.g. https://id.example.com/).")]
    public Uri? Authority { get; set; }

    [Required(ErrorMessage = "IdentityTokenClient:ClientId is required.")]
    public string ClientId { get; set; } = "";

    /// <summary><c>client_secret_basic</c> (RFC 6749 §2.3.1). Never committed: set it through the environment.</summary>
    public string? ClientSecret { get; set; }

    /// <summary><c>private_key_jwt</c> (RFC 7523 §2.2): a PEM file holding the client's RSA or EC private key.</summary>
    public string? PrivateKeyPath { get; set; }

    /// <summary>The <c>kid</c> of <see cref="PrivateKeyPath"/>'s key in the client's registered JWKS.</summary>
    public string? KeyId { get; set; }

    /// <summary>
    /// <c>tls_client_auth</c> / <c>self_signed_tls_client_auth</c> (RFC 8705 §2): the client certificate, a PEM file
    /// (its key in the same file or in <see cref="CertificateKeyFile"/>, any intermediates after the leaf) or a
    /// PKCS#12 file (<c>.pfx</c>/<c>.p12</c>, with <see cref="CertificatePassword"/>). Tokens obtained with it are
    /// bound to it (<c>cnf.x5t#S256</c>), so send the calls that use them with it too
    /// (<see cref="TokenClientExtensions.UseIdentityClientCertificate"/>). The file is read again when it changes
    /// (checked at most every <see cref="CertificateReloadInterval"/>): a rotated certificate gets a new token.
    /// </summary>
    public string? CertificateFile { get; set; }

    /// <summary>PEM file of <see cref="CertificateFile"/>'s private key, when it is not in the certificate's file.</summary>
    public string? CertificateKeyFile { get; set; }

    /// <summary>The password of a PKCS#12 <see cref="CertificateFile"/>. Never committed: set it through the environment.</summary>
    public string? CertificatePassword { get; set; }

    /// <summary>How often, at most, <see cref="CertificateFile"/> is looked at for a rotated certificate.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00", ErrorMessage = "IdentityTokenClient:CertificateReloadInterval must be between 00:00:00 and 01:00:00.")]
    public TimeSpan CertificateReloadInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The token endpoint's mTLS alias; unset, it is read from discovery's <c>mtls_endpoint_aliases</c>
    /// (RFC 8705 §5), falling back to the token endpoint itself when Identity publishes no alias.
    /// </summary>
    public Uri? MtlsTokenEndpoint { get; set; }

    /// <summary>
    /// PEM bundle of the CAs that issue Identity's (and, through <see cref="TokenClientExtensions.UseIdentityClientCertificate"/>,
    /// the called services') server certificates, when they are not in the system's store (a private CA).
    /// </summary>
    public string? TrustedServerCaFile { get; set; }

    /// <summary>
    /// Another way to authenticate, set in code: when set, <see cref="ClientSecret"/>, <see cref="PrivateKeyPath"/>
    /// and <see cref="CertificateFile"/> are not used.
    /// </summary>
    public TokenClientAuthentication? Authentication { get; set; }

    /// <summary>Space-separated scopes requested (RFC 6749 §3.3); empty asks for the client's default.</summary>
    public string Scope { get; set; } = "";

    /// <summary>
    /// A cached token is replaced this long before it expires (at most halfway through its life), so a call never
    /// leaves with a token that expires on the way.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00", ErrorMessage = "IdentityTokenClient:RefreshBeforeExpiry must be between 00:00:00 and 01:00:00.")]
    public TimeSpan RefreshBeforeExpiry { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Retries of a transient failure (network error, 408, 429, 5xx), with exponential backoff and jitter.</summary>
    [Range(0, 10, ErrorMessage = "IdentityTokenClient:RetryAttempts must be between 0 and 10.")]
    public int RetryAttempts { get; set; } = 3;

    [Range(typeof(TimeSpan), "00:00:00.001", "00:01:00", ErrorMessage = "IdentityTokenClient:RetryDelay must be between 00:00:00.001 and 00:01:00.")]
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    [Range(typeof(TimeSpan), "00:00:00.010", "00:05:00", ErrorMessage = "IdentityTokenClient:AttemptTimeout must be between 00:00:00.010 and 00:05:00.")]
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Attempts seen within <see cref="CircuitSamplingDuration"/> before the breaker may open (Polly: at least 2).</summary>
    [Range(2, 10_000, ErrorMessage = "IdentityTokenClient:CircuitMinimumThroughput must be between 2 and 10000.")]
    public int CircuitMinimumThroughput { get; set; } = 10;

    [Range(0.01, 1.0, ErrorMessage = "IdentityTokenClient:CircuitFailureRatio must be between 0.01 and 1.")]
    public double CircuitFailureRatio { get; set; } = 0.5;

    [Range(typeof(TimeSpan), "00:00:00.500", "01:00:00", ErrorMessage = "IdentityTokenClient:CircuitSamplingDuration must be between 00:00:00.500 and 01:00:00.")]
    public TimeSpan CircuitSamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an open circuit fails calls at once before one trial request goes through.</summary>
    [Range(typeof(TimeSpan), "00:00:00.500", "01:00:00", ErrorMessage = "IdentityTokenClient:CircuitBreakDuration must be between 00:00:00.500 and 01:00:00.")]
    public TimeSpan CircuitBreakDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The authority with a trailing slash, so relative paths append to it.</summary>
    internal Uri AuthorityBase => Authority!.AbsoluteUri.EndsWith('/') ? Authority : new Uri(Authority.AbsoluteUri + "/");

    internal Uri TokenEndpoint => new(AuthorityBase, "connect/token");
}

/// <summary>Rules across fields: the authority's URL, and exactly one way to authenticate.</summary>
public sealed class IdentityTokenClientOptionsValidator : IValidateOptions<IdentityTokenClientOptions>
{
    public ValidateOptionsResult Validate(string? name, IdentityTokenClientOptions options)
    {
        var key = TokenClientExtensions.SectionOf(name);
        var authority = AuthorityUrl.Validate(options.Authority, $"{key}:Authority");
        if (authority.Failed)
        {
            return authority;
        }

        if (options.Authentication is not null)
        {
            return ValidateOptionsResult.Success;
        }

        var withSecret = !string.IsNullOrEmpty(options.ClientSecret);
        var withKey = !string.IsNullOrEmpty(options.PrivateKeyPath);
        var withCertificate = !string.IsNullOrEmpty(options.CertificateFile);
        if ((withSecret ? 1 : 0) + (withKey ? 1 : 0) + (withCertificate ? 1 : 0) != 1)
        {
            return ValidateOptionsResult.Fail(
                $"{key}: set exactly one of ClientSecret (client_secret_basic), PrivateKeyPath (private_key_jwt) and CertificateFile (mutual TLS).");
        }

        if (options.MtlsTokenEndpoint is { } alias && (!alias.IsAbsoluteUri || alias.Scheme != Uri.UriSchemeHttps))
        {
            return ValidateOptionsResult.Fail($"{key}:MtlsTokenEndpoint must be an absolute https URL (mutual TLS needs TLS).");
        }

        if (withCertificate)
        {
            try
            {
                using var _ = ClientCertificate.Load(options);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or System.Security.Cryptography.CryptographicException)
            {
                return ValidateOptionsResult.Fail(
                    $"{key}:CertificateFile cannot be read as a certificate with its private key (PEM with CertificateKeyFile, or PKCS#12 with CertificatePassword): {e.GetType().Name}.");
            }
        }

        if (options.TrustedServerCaFile is { Length: > 0 } caFile && ClientCertificate.LoadBundle(caFile) is null)
        {
            return ValidateOptionsResult.Fail($"{key}:TrustedServerCaFile does not hold a PEM certificate.");
        }

        if (withKey)
        {
            try
            {
                using var _ = PrivateKeyJwtAuthentication.Load(options.PrivateKeyPath!, options.KeyId);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or System.Security.Cryptography.CryptographicException)
            {
                return ValidateOptionsResult.Fail($"{key}:PrivateKeyPath does not hold a usable RSA or EC private key in PEM ({e.GetType().Name}).");
            }
        }

        return ValidateOptionsResult.Success;
    }
}
