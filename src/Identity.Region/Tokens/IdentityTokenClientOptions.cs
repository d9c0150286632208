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
    /// Another way to authenticate (mutual TLS, RFC 8705 §2): when set, <see cref="ClientSecret"/> and
    /// <see cref="PrivateKeyPath"/> are not used. Code only, not configuration.
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
        if (withSecret == withKey)
        {
            return ValidateOptionsResult.Fail(
                $"{key}: set exactly one of ClientSecret (client_secret_basic) and PrivateKeyPath (private_key_jwt).");
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
