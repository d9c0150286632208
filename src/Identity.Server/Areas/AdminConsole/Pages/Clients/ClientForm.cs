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
    };

    /// <summary>
    /// The request the admin API would receive; null (with the reason under <c>jwks</c>) when the key set is not JSON.
    /// Settings the form does not show (IP ranges, rate limit, refresh leeway) are carried over from <paramref name="kept"/>.
    /// </summary>
    public ClientRequest? ToRequest(ModelStateDictionary state, ClientView? kept = null)
    {
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
                return null;
            }
        }

        return new ClientRequest(Blank(ClientId), Blank(DisplayName), AuthenticationMethod, [.. GrantTypes.Distinct(StringComparer.Ordinal)],
            Lines(RedirectUris), Lines(PostLogoutRedirectUris),
            [.. (Scopes ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)],
            FirstParty, Blank(AccessTokenLifetime), Blank(Region), jwks, kept?.RefreshTokenReuseLeeway,
            Blank(TlsClientAuthSubjectDn), Blank(TlsClientAuthSanDns), Blank(TlsClientAuthSanUri),
            kept?.AllowedIpRanges is { Count: > 0 } ranges ? [.. ranges] : null,
            kept?.TokenRateLimit);
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
