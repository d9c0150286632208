using Identity.Server.Clients;
using Identity.Server.Connect;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.AdminConsole;

/// <summary>
/// The console as a client of Identity: a public, first-party web client (PKCE, no secret to share between replicas,
/// as Keycloak's own admin console), registered at start for the issuer's <c>/admin</c> callback (decision 0079).
/// </summary>
public static class ConsoleClient
{
    public const string ClientId = "identity-console";
    public const string Area = "AdminConsole";
    public const string BasePath = "/admin";
    public const string CallbackPath = BasePath + "/signin-oidc";
    public const string SignedOutCallbackPath = BasePath + "/signout-callback-oidc";
    public const string CookieScheme = "AdminConsole";
    public const string OidcScheme = "AdminConsoleOidc";
    public const string Policy = "admin-console";

    /// <summary>The console's pages: under <c>/admin</c>, but not the admin API (<c>/admin/v1</c>).</summary>
    public static bool IsConsolePath(PathString path) =>
        path.StartsWithSegments(BasePath, StringComparison.OrdinalIgnoreCase)
        && !path.StartsWithSegments(BasePath + "/v1", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Where Identity is reached, for the console's redirect URIs and its discovery: the configured issuer, or (in
    /// Development, where the issuer follows the request) the first address the server is told to listen on.
    /// </summary>
    public static Uri Origin(IConfiguration configuration)
    {
        if (configuration[$"{OidcOptions.SectionName}:{nameof(OidcOptions.Issuer)}"] is { Length: > 0 } issuer)
        {
            return new Uri(issuer.EndsWith('/') ? issuer : issuer + "/");
        }

        var first = (configuration["urls"] ?? "http://localhost:5000").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .FirstOrDefault(u => u.StartsWith("http", StringComparison.OrdinalIgnoreCase)) ?? "http://localhost:5000";
        // A wildcard binding (http://*:5080, http://+:5080, http://0.0.0.0:5080) is reached as localhost.
        var uri = new UriBuilder(first.Replace("://*", "://localhost", StringComparison.Ordinal).Replace("://+", "://localhost", StringComparison.Ordinal));
        if (uri.Host is "0.0.0.0" or "[::]")
        {
            uri.Host = "localhost";
        }

        uri.Path = "/";
        return uri.Uri;
    }

    /// <summary>The console's registration, applied at every start like the clients declared in configuration.</summary>
    public static ClientDefinition Definition(Uri origin) => new()
    {
        ClientId = ClientId,
        DisplayName = "Identity admin console",
        GrantTypes = [GrantTypes.AuthorizationCode],
        Scopes = [Scopes.OpenId, Scopes.Email],
        RedirectUris = [new Uri(origin, CallbackPath.TrimStart('/'))],
        PostLogoutRedirectUris = [new Uri(origin, SignedOutCallbackPath.TrimStart('/'))],
        FirstParty = true,
    };
}
