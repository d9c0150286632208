using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Identity.Region.Validation;

/// <summary>
/// How a regional service validates the access tokens its APIs receive (section <c>IdentityTokenValidation</c>),
/// validated at start.
/// </summary>
public sealed class IdentityTokenValidationOptions
{
    public const string SectionName = "IdentityTokenValidation";

    /// <summary>Identity's URL, which is also the issuer (<c>iss</c>) tokens must carry; https unless loopback.</summary>
    [Required(ErrorMessage = "IdentityTokenValidation:Authority is required (Identity's URL, e.g. https://id.example.com/).")]
    public Uri? Authority { get; set; }

    /// <summary>The audiences (resources) this service answers to: a token must name one of them in <c>aud</c>.</summary>
    [MinLength(1, ErrorMessage = "IdentityTokenValidation:Audiences must name at least one audience (the resource this API is).")]
    public List<string> Audiences { get; set; } = [];

    /// <summary>Refuse tokens that are not bound to a certificate (RFC 8705 §3): every caller must use mutual TLS.</summary>
    public bool RequireCertificateBinding { get; set; }

    /// <summary>
    /// PEM bundle of the CAs that issue callers' certificates: a caller's chain must end in one of them. Unset, the
    /// machine's trust store decides.
    /// </summary>
    public string? TrustedCaFile { get; set; }

    /// <summary>Accept self-signed caller certificates (the <c>self_signed_tls_client_auth</c> clients, RFC 8705 §2.2).</summary>
    public bool AllowSelfSignedCertificates { get; set; }

    /// <summary>
    /// Addresses (IPs or CIDR ranges) of the proxies whose forwarded client certificate is believed. Empty: only a
    /// certificate presented on this service's own TLS connection counts.
    /// </summary>
    public List<string> TrustedProxies { get; set; } = [];

    /// <summary>The header a trusted proxy puts the caller's certificate in (URL-encoded PEM or base64 DER).</summary>
    public string ForwardedCertificateHeader { get; set; } = "X-Client-Cert";

    /// <summary>
    /// Where Identity's keys are kept between runs (a relative path is under the content root). With it, the service
    /// starts while Identity is down and validates from these keys for <see cref="MaxKeyStaleness"/>.
    /// </summary>
    public string? KeyCacheFile { get; set; }

    /// <summary>How long after the last successful key fetch tokens are still validated; then refused (fail closed).</summary>
    [Range(typeof(TimeSpan), "00:01:00", "30.00:00:00", ErrorMessage = "IdentityTokenValidation:MaxKeyStaleness must be between 00:01:00 and 30.00:00:00.")]
    public TimeSpan MaxKeyStaleness { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How often the keys are fetched again while all is well.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00", ErrorMessage = "IdentityTokenValidation:KeyRefreshInterval must be between 00:00:01 and 1.00:00:00.")]
    public TimeSpan KeyRefreshInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How soon a failed fetch is tried again.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00", ErrorMessage = "IdentityTokenValidation:KeyRetryInterval must be between 00:00:00.100 and 01:00:00.")]
    public TimeSpan KeyRetryInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A token signed by an unknown <c>kid</c> makes the keys be fetched again, at most once per this interval.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00", ErrorMessage = "IdentityTokenValidation:UnknownKeyRefreshInterval must be between 00:00:00 and 00:10:00.")]
    public TimeSpan UnknownKeyRefreshInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Without a key cache file, how long start-up waits for Identity's keys before it gives up.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:30:00", ErrorMessage = "IdentityTokenValidation:StartupTimeout must be between 00:00:01 and 00:30:00.")]
    public TimeSpan StartupTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Tolerated clock difference with Identity for <c>exp</c> and <c>nbf</c>.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:05:00", ErrorMessage = "IdentityTokenValidation:ClockSkew must be between 00:00:00 and 00:05:00.")]
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Verified tokens remembered (by hash) so that a repeated token skips its signature check; 0 turns it off.</summary>
    [Range(0, 1_000_000, ErrorMessage = "IdentityTokenValidation:ValidatedTokenCacheSize must be between 0 and 1000000.")]
    public int ValidatedTokenCacheSize { get; set; } = 10_000;

    /// <summary>The issuer with a trailing slash, as Identity writes it in <c>iss</c> and discovery.</summary>
    internal string Issuer => Authority!.AbsoluteUri.EndsWith('/') ? Authority.AbsoluteUri : Authority.AbsoluteUri + "/";

    internal Uri DiscoveryEndpoint => new(new Uri(Issuer), ".well-known/openid-configuration");
}

/// <summary>Rules across fields: the authority's URL, readable files, parsable proxy addresses.</summary>
public sealed class IdentityTokenValidationOptionsValidator : IValidateOptions<IdentityTokenValidationOptions>
{
    public ValidateOptionsResult Validate(string? name, IdentityTokenValidationOptions options)
    {
        var failures = new List<string>();
        if (AuthorityUrl.Validate(options.Authority, "IdentityTokenValidation:Authority") is { Failed: true } authority)
        {
            failures.Add(authority.FailureMessage);
        }

        if (options.Audiences.Any(string.IsNullOrWhiteSpace))
        {
            failures.Add("IdentityTokenValidation:Audiences must not contain an empty audience.");
        }

        if (!string.IsNullOrEmpty(options.TrustedCaFile) && !File.Exists(options.TrustedCaFile))
        {
            failures.Add($"IdentityTokenValidation:TrustedCaFile '{options.TrustedCaFile}' does not exist.");
        }

        foreach (var proxy in options.TrustedProxies)
        {
            if (!TrustedProxies.TryParse(proxy, out _))
            {
                failures.Add($"IdentityTokenValidation:TrustedProxies: '{proxy}' is neither an IP address nor a CIDR range.");
            }
        }

        if (options.TrustedProxies.Count > 0 && string.IsNullOrWhiteSpace(options.ForwardedCertificateHeader))
        {
            failures.Add("IdentityTokenValidation:ForwardedCertificateHeader is required when TrustedProxies are set.");
        }

        if (options.KeyRetryInterval > options.KeyRefreshInterval)
        {
            failures.Add("IdentityTokenValidation:KeyRetryInterval must not be longer than KeyRefreshInterval.");
        }

        if (options.KeyRefreshInterval >= options.MaxKeyStaleness)
        {
            failures.Add("IdentityTokenValidation:KeyRefreshInterval must be shorter than MaxKeyStaleness, or the keys go stale between two fetches.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
