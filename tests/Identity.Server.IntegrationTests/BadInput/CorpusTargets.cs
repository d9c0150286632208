namespace Identity.Server.IntegrationTests.BadInput;

/// <summary>An anti-forgery cookie and the form token that goes with it (ASP.NET Core binds the pair to one user).</summary>
public sealed record Antiforgery(string Cookie, string FormToken);

/// <summary>
/// What a live server gave the corpus to work with: real tokens, sessions, ids and credentials, so that a bad request
/// can be bad in one place only and reach the code behind the checks it passes.
/// </summary>
public sealed record CorpusTargets
{
    public required string Issuer { get; init; }

    /// <summary>A client-credentials token of the declared platform-admin client (scope identity.admin).</summary>
    public required string AdminToken { get; init; }

    /// <summary>A client-credentials token of region-eu (scope identity.sync).</summary>
    public required string SyncToken { get; init; }

    /// <summary>A client-credentials token of svc-basic (scope api.read): valid, but for none of Identity's own APIs.</summary>
    public required string ServiceToken { get; init; }

    public required string UserAccessToken { get; init; }

    public required string RefreshToken { get; init; }

    public required string IdToken { get; init; }

    /// <summary>A correctly signed private_key_jwt assertion of svc-jwt (single use: its jti).</summary>
    public required string ClientAssertion { get; init; }

    /// <summary>Cookie header of a signed-in session that the corpus keeps (authorize, consent, passkeys, TOTP).</summary>
    public required string Session { get; init; }

    /// <summary>Cookie header of a second session, the one end-session requests may end.</summary>
    public required string EndableSession { get; init; }

    public required Antiforgery Anonymous { get; init; }

    public required Antiforgery SignedIn { get; init; }

    public required Antiforgery EndableSignedIn { get; init; }

    public required string BasicSecret { get; init; }

    public required string WebSecret { get; init; }

    /// <summary>A user whose lockout is off: the corpus sends its correct password with everything else bent.</summary>
    public required string SignInEmail { get; init; }

    public required string SignInPassword { get; init; }

    /// <summary>An account the corpus may change and delete, with a user and a region of its own.</summary>
    public required Guid AccountId { get; init; }

    public required string AccountUserId { get; init; }

    public required string Region { get; init; }

    /// <summary>A client created through the admin API for the corpus to change, rotate and delete (never a declared one).</summary>
    public required string ClientId { get; init; }
}
