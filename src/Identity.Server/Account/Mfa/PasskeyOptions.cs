using Identity.Server.Connect;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace Identity.Server.Account.Mfa;

/// <summary>
/// The <c>Passkeys</c> configuration section: Identity as a WebAuthn relying party. <c>ServerDomain</c> is the
/// relying-party ID (WebAuthn Level 3 §5.1.3: a domain, never an IP address), by default the host of
/// <c>Oidc:Issuer</c>; <c>AllowedOrigins</c> are the exact origins whose pages may use the passkeys, by default the
/// issuer's origin.
/// </summary>
public sealed class PasskeyOptions
{
    public const string SectionName = "Passkeys";

    /// <summary>The relying-party ID, e.g. <c>id.example.com</c>: passkeys work on that host and its subdomains.</summary>
    public string? ServerDomain { get; set; }

    /// <summary>Origins such as <c>https://id.example.com</c> (scheme, host and port only).</summary>
    public List<string> AllowedOrigins { get; set; } = [];

    /// <summary>
    /// Whether a browser can use passkeys at this request's host. Without a configured domain the relying-party ID
    /// is the request's host (Development), and a browser refuses one that is an IP address (http://127.0.0.1).
    /// </summary>
    public bool IsAvailable(HttpRequest request) =>
        Uri.CheckHostName(ServerDomain ?? request.Host.Host) == UriHostNameType.Dns;

    /// <summary>Whether <paramref name="host"/> is <paramref name="domain"/> or one of its subdomains.</summary>
    internal static bool IsWithin(string host, string domain) =>
        string.Equals(host, domain, StringComparison.OrdinalIgnoreCase)
        || host.EndsWith("." + domain, StringComparison.OrdinalIgnoreCase);

    /// <summary>An origin as a browser writes it in <c>clientDataJSON</c>: no path, no default port.</summary>
    internal static string? Normalize(string origin) =>
        Uri.TryCreate(origin, UriKind.Absolute, out var uri) ? uri.GetLeftPart(UriPartial.Authority).ToLowerInvariant() : null;
}

/// <summary>Fills what the section leaves out from <c>Oidc:Issuer</c>, before validation.</summary>
internal sealed class PasskeyDefaults(IConfiguration configuration) : IPostConfigureOptions<PasskeyOptions>
{
    public void PostConfigure(string? name, PasskeyOptions options)
    {
        options.ServerDomain = string.IsNullOrWhiteSpace(options.ServerDomain) ? null : options.ServerDomain.Trim().TrimEnd('.').ToLowerInvariant();
        var issuer = configuration.GetValue<Uri?>($"{OidcOptions.SectionName}:{nameof(OidcOptions.Issuer)}");
        if (issuer is not { IsAbsoluteUri: true })
        {
            return;
        }

        // An issuer at an IP address cannot be a relying party: passkeys stay unavailable there rather than the
        // server refusing to start (loopback test hosts, a bare-IP benchmark).
        if (options.ServerDomain is null && issuer.HostNameType == UriHostNameType.Dns)
        {
            options.ServerDomain = issuer.IdnHost.ToLowerInvariant();
        }

        if (options.AllowedOrigins.Count == 0 && options.ServerDomain is { } domain && PasskeyOptions.IsWithin(issuer.IdnHost, domain))
        {
            options.AllowedOrigins.Add(issuer.GetLeftPart(UriPartial.Authority));
        }
    }
}

/// <summary>Refuses to start with a relying party no browser would accept, and says which key is wrong.</summary>
internal sealed class PasskeyOptionsValidator(IConfiguration configuration) : IValidateOptions<PasskeyOptions>
{
    public ValidateOptionsResult Validate(string? name, PasskeyOptions options)
    {
        var failures = new List<string>();
        var domain = options.ServerDomain;
        switch (domain is null ? UriHostNameType.Unknown : Uri.CheckHostName(domain))
        {
            case UriHostNameType.IPv4 or UriHostNameType.IPv6:
                failures.Add($"{PasskeyOptions.SectionName}:{nameof(PasskeyOptions.ServerDomain)} must be a domain name, not an IP address " +
                    "(WebAuthn relying-party IDs are domains): serve Identity under a host name such as localhost or id.example.com.");
                break;
            case not UriHostNameType.Dns when domain is not null:
                failures.Add($"{PasskeyOptions.SectionName}:{nameof(PasskeyOptions.ServerDomain)} must be a host name such as id.example.com (no scheme, port or path).");
                break;
        }

        // WebAuthn needs a secure context: https, or http at localhost. Oidc:AllowInsecureHttp (local use) lets an
        // http issuer's origin through, where a browser simply offers no passkeys.
        var insecureHttp = configuration.GetValue<bool>($"{OidcOptions.SectionName}:{nameof(OidcOptions.AllowInsecureHttp)}");
        for (var i = 0; i < options.AllowedOrigins.Count; i++)
        {
            var key = $"{PasskeyOptions.SectionName}:{nameof(PasskeyOptions.AllowedOrigins)}:{i}";
            if (!Uri.TryCreate(options.AllowedOrigins[i], UriKind.Absolute, out var origin)
                || origin.Scheme is not ("https" or "http")
                || origin.PathAndQuery != "/" || origin.Fragment.Length > 0 || origin.UserInfo.Length > 0)
            {
                failures.Add($"{key} must be an origin such as https://id.example.com (scheme, host and port only).");
            }
            else if (origin.Scheme == "http" && !insecureHttp && !IsLocalhost(origin.Host))
            {
                failures.Add($"{key} must use https: browsers offer passkeys only in a secure context (https, or http://localhost).");
            }
            else if (domain is null)
            {
                failures.Add($"{key} needs {PasskeyOptions.SectionName}:{nameof(PasskeyOptions.ServerDomain)} (or an Oidc:Issuer with a host name).");
            }
            else if (!PasskeyOptions.IsWithin(origin.IdnHost, domain))
            {
                failures.Add($"{key} ({origin.Host}) is neither {domain} nor a subdomain of it: browsers refuse that relying-party ID there (WebAuthn Level 3 §5.1.3).");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static bool IsLocalhost(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase);
}

/// <summary>ASP.NET Core Identity's passkey handler, set from the validated <see cref="PasskeyOptions"/>.</summary>
internal sealed class IdentityPasskeySetup(IOptions<PasskeyOptions> passkeys) : IConfigureOptions<IdentityPasskeyOptions>
{
    public void Configure(IdentityPasskeyOptions options)
    {
        var settings = passkeys.Value;
        options.ServerDomain = settings.ServerDomain;

        // A passkey is a sign-in of its own here (amr "mfa", see PasskeySignInModel): the authenticator must verify
        // the person (PIN or biometric), and the credential must be discoverable, so the login page needs no email.
        options.UserVerificationRequirement = "required";
        options.ResidentKeyRequirement = "required";

        if (settings.AllowedOrigins.Count > 0)
        {
            var allowed = settings.AllowedOrigins.Select(PasskeyOptions.Normalize).OfType<string>().ToHashSet(StringComparer.Ordinal);

            // WebAuthn Level 3 §7.1 / §7.2 (verifying C.origin): the origin in clientDataJSON must be one of ours,
            // and not a cross-origin frame (frame-ancestors 'none' already forbids framing these pages).
            options.ValidateOrigin = context => ValueTask.FromResult(
                !context.CrossOrigin && PasskeyOptions.Normalize(context.Origin) is { } origin && allowed.Contains(origin));
        }
    }
}
