using System.ComponentModel.DataAnnotations;

namespace Identity.Server.Clients;

/// <summary>
/// A client declared in configuration (<c>Oidc:Clients</c>). Secrets are never written here:
/// they are referenced through an environment variable or a file.
/// </summary>
public sealed class ClientDefinition
{
    [Required, RegularExpression("^[A-Za-z0-9._:-]{3,100}$")]
    public string ClientId { get; set; } = "";

    [StringLength(200)]
    public string? DisplayName { get; set; }

    /// <summary><c>client_credentials</c>, <c>authorization_code</c>, <c>refresh_token</c>.</summary>
    public List<string> GrantTypes { get; set; } = [];

    public List<string> Scopes { get; set; } = [];

    public List<Uri> RedirectUris { get; set; } = [];

    public List<Uri> PostLogoutRedirectUris { get; set; } = [];

    /// <summary>Name of the environment variable holding the client secret.</summary>
    public string? SecretEnvironmentVariable { get; set; }

    /// <summary>Path of a file holding the client secret (e.g. a mounted Kubernetes secret).</summary>
    public string? SecretFile { get; set; }

    /// <summary>
    /// Public JSON Web Key Set for <c>private_key_jwt</c> (RFC 7523), inline. A key carrying a self-signed certificate in
    /// <c>x5c</c> also lets the client authenticate with that certificate (<c>self_signed_tls_client_auth</c>, RFC 8705 §2.2).
    /// </summary>
    public string? Jwks { get; set; }

    /// <summary>Path of a file holding the public JWKS for <c>private_key_jwt</c>.</summary>
    public string? JwksFile { get; set; }

    /// <summary>
    /// How the client authenticates at the token endpoint (RFC 7591 §2 <c>token_endpoint_auth_method</c>):
    /// <c>client_secret_basic</c>, <c>client_secret_post</c>, <c>private_key_jwt</c>, <c>tls_client_auth</c>,
    /// <c>self_signed_tls_client_auth</c> or <c>none</c>. Unset, it follows from the credentials declared (a
    /// <c>TlsClientAuth*</c> name, a secret, a JWKS, nothing). A certificate client is refused without its certificate.
    /// </summary>
    public string? TokenEndpointAuthMethod { get; set; }

    /// <summary>
    /// <c>tls_client_auth</c> (RFC 8705 §2.1): the client presents a certificate issued by a CA of <c>Mtls:TrustedCaFile</c>
    /// whose subject distinguished name is this one. Set exactly one of the three <c>TlsClientAuth*</c> settings.
    /// </summary>
    public string? TlsClientAuthSubjectDn { get; set; }

    /// <summary><c>tls_client_auth</c> matched on a dNSName subject alternative name of the certificate.</summary>
    public string? TlsClientAuthSanDns { get; set; }

    /// <summary><c>tls_client_auth</c> matched on a uniformResourceIdentifier subject alternative name of the certificate.</summary>
    public string? TlsClientAuthSanUri { get; set; }

    /// <summary>First-party clients skip the consent screen; third-party clients ask once.</summary>
    public bool FirstParty { get; set; } = true;

    public TimeSpan? AccessTokenLifetime { get; set; }

    /// <summary>
    /// How long a rotated refresh token may be presented again and still get new tokens (a retry after a response lost
    /// on the network); none by default. Confidential clients only, at most one minute.
    /// <para>
    /// Risk: within the leeway a replayed refresh token is not detected as reuse. Whoever holds a copy of it (the
    /// refresh token leaked from the client, its logs or its traffic) gets a new, different token pair of their own, and
    /// from then on the client and the thief each refresh their own branch of the chain, neither ever presenting a
    /// token the other used: the theft is never detected (RFC 9700 §4.14.2). Without a leeway, the second use of any
    /// refresh token revokes the whole family, the legitimate client's branch included. Give a leeway only to a client
    /// that authenticates (its secret or key must be stolen too) and really retries refreshes.
    /// </para>
    /// </summary>
    public TimeSpan? RefreshTokenReuseLeeway { get; set; }

    /// <summary>The region a regional service's client is bound to (its events and sync access), if any.</summary>
    public string? Region { get; set; }

    /// <summary>A platform-administration client (bootstrap automation): full access to the admin API.</summary>
    public bool PlatformAdmin { get; set; }

    /// <summary>
    /// CIDR ranges (IPv4 or IPv6, at most 100) the client may call the token, introspection and revocation endpoints
    /// from; empty: anywhere. The address is the connection's, or a configured proxy's <c>X-Forwarded-For</c>.
    /// </summary>
    public List<string> AllowedIpRanges { get; set; } = [];

    /// <summary>
    /// Token requests the client may make: <c>Permits</c> per <c>Window</c> (1 s to 1 h), counted on each replica.
    /// Confidential clients only.
    /// </summary>
    public TokenRateLimitDefinition? TokenRateLimit { get; set; }
}

/// <summary>A scope declared in configuration (<c>Oidc:Scopes</c>), with the resources (audiences) it grants.</summary>
public sealed class ScopeDefinition
{
    [Required, RegularExpression("^[\\x21\\x23-\\x5B\\x5D-\\x7E]{1,100}$")] // RFC 6749 §3.3 scope-token
    public string Name { get; set; } = "";

    [StringLength(200)]
    public string? DisplayName { get; set; }

    public List<string> Resources { get; set; } = [];
}
