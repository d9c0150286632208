using System.ComponentModel.DataAnnotations;

namespace Identity.Server.Connect;

/// <summary>
/// The server's settings in the <c>Oidc</c> configuration section: issuer, transport, token lifetimes, the access
/// token's algorithm and how long clients and scopes are cached. The same section declares clients
/// (<see cref="Clients.ClientCatalogueOptions"/>) and scopes (<see cref="Clients.ScopeOptions"/>), read apart.
/// </summary>
public sealed class OidcOptions
{
    public const string SectionName = "Oidc";

    /// <summary>The issuer URI (required outside Development, where it is derived from the request).</summary>
    public Uri? Issuer { get; set; }

    /// <summary>Serve the protocol endpoints over plain HTTP. Development and loopback benchmarks only.</summary>
    public bool AllowInsecureHttp { get; set; }

    /// <summary>Default access-token lifetime; a client may override it (<c>AccessTokenLifetime</c>).</summary>
    [Range(typeof(TimeSpan), "00:00:30", "1.00:00:00")]
    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromMinutes(10);

    [Range(typeof(TimeSpan), "00:00:30", "1.00:00:00")]
    public TimeSpan IdentityTokenLifetime { get; set; } = TimeSpan.FromMinutes(5);

    [Range(typeof(TimeSpan), "00:00:10", "00:10:00")]
    public TimeSpan AuthorizationCodeLifetime { get; set; } = TimeSpan.FromMinutes(1);

    [Range(typeof(TimeSpan), "00:01:00", "90.00:00:00")]
    public TimeSpan RefreshTokenLifetime { get; set; } = TimeSpan.FromDays(14);

    /// <summary>
    /// How long a replica trusts its cached copy of a client (secret hash, permissions, keys).
    /// A rotated secret, a deleted or changed client is honoured on every replica after at most this long.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan ApplicationCacheDuration { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// How long a replica trusts its cached copy of a user and of an account (status, policy, name) on the sign-in path
    /// (<see cref="Account.DirectoryCache"/>): a user disabled, an account suspended or a policy changed at another replica
    /// is honoured here after at most this long; at the replica that made the change, at once. 0: no copy is kept.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:10")]
    public TimeSpan UserCacheDuration { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Algorithm for access tokens: <c>ES256</c> (default, ~12x cheaper) or <c>RS256</c>. ID tokens are always RS256.</summary>
    [RegularExpression("^(ES256|RS256)$")]
    public string AccessTokenAlgorithm { get; set; } = "ES256";
}
