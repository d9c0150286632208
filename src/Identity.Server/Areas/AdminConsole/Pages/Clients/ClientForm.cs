using System.Globalization;
using System.Text.Json;
using Identity.Server.Admin;
using Identity.Server.Clients;
using Microsoft.AspNetCore.Mvc.ModelBinding;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.AdminConsole.Pages.Clients;

/// <summary>
/// A client's declaration as the console's form holds it (lists one per line, scopes separated by spaces), turned into
/// the admin API's <see cref="ClientRequest"/> for <see cref="ClientOperations"/>, which alone decides what is valid.
/// </summary>
public sealed class ClientForm
{
    /// <summary>Every grant the authority serves, and every way a client authenticates at the token endpoint.</summary>
    public static IReadOnlyList<string> Grants { get; } = [OpenIddict.Abstractions.OpenIddictConstants.GrantTypes.AuthorizationCode, OpenIddict.Abstractions.OpenIddictConstants.GrantTypes.RefreshToken, OpenIddict.Abstractions.OpenIddictConstants.GrantTypes.ClientCredentials];

    public static IReadOnlyList<(string Value, string Text)> Methods { get; } =
    [
        (ClientAuthenticationMethods.ClientSecretBasic, "client_secret_basic: a generated secret, sent with HTTP Basic"),
        (ClientAuthenticationMethods.ClientSecretPost, "client_secret_post: a generated secret, sent in the form"),
        (ClientAuthenticationMethods.PrivateKeyJwt, "private_key_jwt: a JWT signed with a key of the JWKS below"),
        (ClientAuthenticationMethods.TlsClientAuth, "tls_client_auth: a CA-issued certificate, matched by subject or SAN"),
        (ClientAuthenticationMethods.SelfSignedTlsClientAuth, "self_signed_tls_client_auth: a self-signed certificate, in the JWKS (x5c)"),
        (ClientAuthenticationMethods.None, "none: a public client (browser or mobile app, PKCE)"),
    ];

    public string? ClientId { get; set; }

    public string? DisplayName { get; set; }

    public string AuthenticationMethod { get; set; } = ClientAuthenticationMethods.ClientSecretBasic;

    public List<string> GrantTypes { get; set; } = [];

    public string? RedirectUris { get; set; }

    public string? PostLogoutRedirectUris { get; set; }

    public string? Scopes { get; set; }

    public string? Region { get; set; }

    public bool FirstParty { get; set; }

    public string? AccessTokenLifetime { get; set; }

    public string? Jwks { get; set; }

    public string? TlsClientAuthSubjectDn { get; set; }

    public string? TlsClientAuthSanDns { get; set; }

    public string? TlsClientAuthSanUri { get; set; }

    /// <summary>CIDR ranges (IPv4 or IPv6), one per line; empty: the client may call from anywhere.</summary>
    public string? AllowedIpRanges { get; set; }

    /// <summary>Token requests per window; with <see cref="TokenRateLimitWindow"/>, both empty: no limit.</summary>
    public string? TokenRateLimitPermits { get; set; }

    public string? TokenRateLimitWindow { get; set; }

    public string? RefreshTokenReuseLeeway { get; set; }

    /// <summary>The form as the client now stands (for editing).</summary>
    public static ClientForm From(ClientView client, string? jwks) => new()
    {
        ClientId = client.ClientId,
        DisplayName = client.DisplayName,
        AuthenticationMethod = client.AuthenticationMethod,
        GrantTypes = [.. client.GrantTypes],
        RedirectUris = string.Join('\n', client.RedirectUris),
        PostLogoutRedirectUris = string.Join('\n', client.PostLogoutRedirectUris),
        Scopes = string.Join(' ', client.Scopes),
        Region = client.Region,
        FirstParty = client.FirstParty,
        AccessTokenLifetime = client.AccessTokenLifetime,
        Jwks = jwks,
        TlsClientAuthSubjectDn = client.TlsClientAuthSubjectDn,
        TlsClientAuthSanDns = client.TlsClientAuthSanDns,
        TlsClientAuthSanUri = client.TlsClientAuthSanUri,
        AllowedIpRanges = string.Join('\n', client.AllowedIpRanges ?? []),
        TokenRateLimitPermits = client.TokenRateLimit?.Permits?.ToString(CultureInfo.InvariantCulture),
        TokenRateLimitWindow = client.TokenRateLimit?.Window,
        RefreshTokenReuseLeeway = client.RefreshTokenReuseLeeway,
    };

    /// <summary>
    /// The request the admin API would receive; null (with the reasons under the fields) when the key set is not JSON
    /// or the rate limit's permits are not a number: what the API's JSON body could not carry either.
    /// </summary>
    public ClientRequest? ToRequest(ModelStateDictionary state)
    {
        var readable = true;
        JsonElement? jwks = null;
        if (!string.IsNullOrWhiteSpace(Jwks))
        {
            try
            {
                using var document = JsonDocument.Parse(Jwks);
                jwks = document.RootElement.Clone();
            }
            catch (JsonException)
            {
                state.AddModelError("jwks", "Not JSON: paste the JSON Web Key Set ({\"keys\":[…]}).");
                readable = false;
            }
        }

        // Both parts empty: no limit. One part alone goes to the operation, which names the missing one.
        ClientTokenRateLimit? rateLimit = null;
        if (Blank(TokenRateLimitPermits) is not null || Blank(TokenRateLimitWindow) is not null)
        {
            int? permits = null;
            if (Blank(TokenRateLimitPermits) is { } text)
            {
                if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
                {
                    permits = parsed;
                }
                else
                {
                    state.AddModelError("tokenRateLimit.permits", $"A whole number from 1 to {ClientAccessPolicy.MaxPermits}.");
                    readable = false;
                }
            }

            rateLimit = new ClientTokenRateLimit(permits, Blank(TokenRateLimitWindow));
        }

        if (!readable)
        {
            return null;
        }

        var ranges = Lines(AllowedIpRanges);
        return new ClientRequest(Blank(ClientId), Blank(DisplayName), AuthenticationMethod, [.. GrantTypes.Distinct(StringComparer.Ordinal)],
            Lines(RedirectUris), Lines(PostLogoutRedirectUris),
            [.. (Scopes ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)],
            FirstParty, Blank(AccessTokenLifetime), Blank(Region), jwks, Blank(RefreshTokenReuseLeeway),
            Blank(TlsClientAuthSubjectDn), Blank(TlsClientAuthSanDns), Blank(TlsClientAuthSanUri),
            ranges.Count > 0 ? ranges : null, rateLimit);
    }

    /// <summary>
    /// The operation's field names as the form's: a list item's message (<c>redirectUris[2]</c>) goes beside its text
    /// area, naming the line.
    /// </summary>
    public static void AddRefusal(ModelStateDictionary state, Core.Operations.OperationResult result)
    {
        if (result.Outcome != Core.Operations.OperationOutcome.Invalid)
        {
            state.AddRefusal(result);
            return;
        }

        foreach (var (key, messages) in result.Errors!)
        {
            var open = key.IndexOf('[', StringComparison.Ordinal);
            var field = open < 0 ? key : key[..open];
            var prefix = open < 0 || !int.TryParse(key[(open + 1)..^1], out var index) ? "" : $"Line {index + 1}: ";
            foreach (var message in messages)
            {
                state.AddModelError(field, prefix + message);
            }
        }
    }

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static List<string> Lines(string? value) =>
        [.. (value ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
}
