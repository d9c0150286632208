using System.Collections.Immutable;
using System.Globalization;
using System.Security.Claims;
using System.Text.Json;
using Identity.Core.Data;
using Microsoft.IdentityModel.JsonWebTokens;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Connect;

/// <summary>The claims of the SSO session, kept in Identity's cookie and carried into every token of that session.</summary>
public static class SessionClaims
{
    /// <summary>OpenID Connect Session Management / Front-Channel Logout: the session identifier.</summary>
    public const string SessionId = "sid";

    public const string AuthTime = Claims.AuthenticationTime;

    /// <summary>RFC 8176 authentication method references.</summary>
    public const string Methods = Claims.AuthenticationMethodReference;

    /// <summary>OpenID Connect Core §2: the authentication context class the session satisfies.</summary>
    public const string ContextClass = Claims.AuthenticationContextReference;

    /// <summary>Password only.</summary>
    public const string AcrPassword = "urn:identity:acr:pwd";

    /// <summary>A second factor was used; request it with <c>acr_values=urn:identity:acr:mfa</c> to step up.</summary>
    public const string AcrMultiFactor = "urn:identity:acr:mfa";

    /// <summary>
    /// The sign-in's instant in Unix milliseconds, kept in the session cookie only: auth_time has whole seconds, too
    /// coarse to tell whether a sign-in happened after a given request (a fresh sign-in for max_age or prompt=login).
    /// </summary>
    public const string SignedInAt = "identity_signed_in_ms";

    public static Claim[] ForNewSession(DateTimeOffset now, params string[] methods) =>
    [
        new(SessionId, Guid.NewGuid().ToString("n")),
        new(AuthTime, now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture), ClaimValueTypes.Integer64),
        new(SignedInAt, now.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture), ClaimValueTypes.Integer64),
        new(Methods, JsonSerializer.Serialize(methods), JsonClaimValueTypes.JsonArray),
        new(ContextClass, methods.Contains("mfa") ? AcrMultiFactor : AcrPassword),
    ];

    /// <summary>The claims that describe the sign-in itself, not the user: kept whenever the session is issued again.</summary>
    public static IEnumerable<Claim> Of(ClaimsPrincipal? session) =>
        session?.Claims.Where(c => c.Type is SessionId or AuthTime or SignedInAt or Methods or ContextClass) ?? [];

    /// <summary>The session began with the password (amr <c>pwd</c>, RFC 8176 §2), not with a passkey alone.</summary>
    public static bool UsedPassword(this ClaimsPrincipal principal) =>
        principal.FindFirst(Methods)?.Value is { Length: > 0 } methods
        && (JsonSerializer.Deserialize<string[]>(methods) ?? []).Contains("pwd", StringComparer.Ordinal);

    public static bool IsMultiFactor(this ClaimsPrincipal principal) => principal.FindFirst(ContextClass)?.Value == AcrMultiFactor;

    public static DateTimeOffset? GetAuthTime(this ClaimsPrincipal principal) =>
        long.TryParse(principal.FindFirst(AuthTime)?.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds)
            ? DateTimeOffset.FromUnixTimeSeconds(seconds)
            : null;

    /// <summary>
    /// When the session's sign-in happened, to the millisecond; a session issued before that claim existed (or re-issued
    /// without it) falls back to auth_time, rounded down, so it is never taken for younger than it is.
    /// </summary>
    public static DateTimeOffset? GetSignedInAt(this ClaimsPrincipal principal) =>
        long.TryParse(principal.FindFirst(SignedInAt)?.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var milliseconds)
            ? DateTimeOffset.FromUnixTimeMilliseconds(milliseconds)
            : principal.GetAuthTime();
}

/// <summary>
/// The one place that turns a user into claims, and decides each claim's destinations (STYLE §6): the principal
/// OpenIddict issues tokens from (code and refresh-token redemption), the authorization code's own (the authorization
/// endpoint, <see cref="ForCode"/>) and the userinfo response (<see cref="UserinfoEndpoint"/>), which carries the
/// user's claims of the ID token the same scopes give. The user's fields are read from the row itself, not through a
/// <c>UserManager</c> (whose store only returns them): resolving this factory builds none (issue 18, decision 0095).
/// </summary>
public sealed class UserPrincipalFactory(AuthorityDbContext db, Account.DirectoryCache directory)
{
    /// <summary>The customer account the person belongs to (id, name, their role in it), with the profile scope; platform admins have none.</summary>
    public const string AccountClaim = "account";

    /// <summary>The claim types of the sign-in the tokens carry (amr apart: <see cref="AddSessionClaims"/> merges it).</summary>
    private static readonly string[] SessionClaimTypes = [SessionClaims.SessionId, SessionClaims.AuthTime, SessionClaims.ContextClass];

    private static readonly DestinationSet IdentityTokenOnly = new(OpenIddictConstants.Destinations.IdentityToken);
    private static readonly DestinationSet AccessTokenOnly = new(OpenIddictConstants.Destinations.AccessToken);
    private static readonly DestinationSet BothTokens = new(OpenIddictConstants.Destinations.AccessToken, OpenIddictConstants.Destinations.IdentityToken);

    /// <summary>
    /// The principal an authorization code (or a remembered consent) is issued from, at the authorization endpoint: the
    /// subject, the sign-in's claims (sid, auth_time, acr, amr), the scopes and resources — no claim about the user and
    /// no destinations. The code is only ever redeemed at the token endpoint, where <see cref="UserTokenSignIn"/> builds
    /// the tokens' principal afresh from the user's current row (<see cref="CreateAsync"/>) and reads nothing else of the
    /// code's; Identity answers the authorization request with a code alone (no implicit or hybrid flow, so no token
    /// leaves the authorization endpoint). The user's claims in the code would be encrypted, signed and read back for
    /// nothing (decision 0095).
    /// </summary>
    public static ClaimsPrincipal ForCode(string subject, ClaimsPrincipal session, ImmutableArray<string> scopes,
        ImmutableArray<string> resources)
    {
        var identity = NewIdentity();
        identity.SetScopes(scopes);
        identity.AddClaim(new Claim(Claims.Subject, subject));
        AddSessionClaims(identity, session);
        identity.SetResources(resources);
        return new ClaimsPrincipal(identity);
    }

    public async Task<ClaimsPrincipal> CreateAsync(ApplicationUser user, ClaimsPrincipal session,
        ImmutableArray<string> scopes, ImmutableArray<string> resources, string? authorizationId)
    {
        var identity = await UserIdentityAsync(user, scopes, CancellationToken.None);
        AddSessionClaims(identity, session);
        identity.SetResources(resources);
        if (authorizationId is not null)
        {
            identity.SetAuthorizationId(authorizationId);
        }

        var profile = identity.HasScope(Scopes.Profile);
        var email = identity.HasScope(Scopes.Email);
        foreach (var claim in identity.Claims)
        {
            DestinationsOf(claim.Type, profile, email)?.ApplyTo(claim);
        }

        return new ClaimsPrincipal(identity);
    }

    /// <summary>sid, auth_time and acr of <paramref name="session"/>, and its amr as one JSON array.</summary>
    private static void AddSessionClaims(ClaimsIdentity identity, ClaimsPrincipal session)
    {
        foreach (var type in SessionClaimTypes)
        {
            if (session.FindFirst(type) is { } claim)
            {
                identity.AddClaim(new Claim(claim.Type, claim.Value, claim.ValueType));
            }
        }

        // amr is always a JSON array (Core §2), the union of every method the session recorded, in order.
        var methods = session.FindAll(SessionClaims.Methods)
            .SelectMany(c => c.ValueType == JsonClaimValueTypes.JsonArray ? JsonSerializer.Deserialize<string[]>(c.Value) ?? [] : [c.Value])
            .Distinct(StringComparer.Ordinal)
            .ToArray();
        if (methods.Length > 0)
        {
            identity.AddClaim(new Claim(SessionClaims.Methods, JsonSerializer.Serialize(methods), JsonClaimValueTypes.JsonArray));
        }
    }

    private static ClaimsIdentity NewIdentity() => new(
        authenticationType: Microsoft.IdentityModel.Tokens.TokenValidationParameters.DefaultAuthenticationType,
        nameType: Claims.Name, roleType: Claims.Role);

    /// <summary>
    /// The userinfo response (OpenID Connect Core §5.3.2): <c>sub</c> and every claim about the user the ID token carries
    /// for <paramref name="scopes"/> (§5.4), with the same values: no claim the tokens never carry, none they carry left out.
    /// The claims of the sign-in itself (sid, auth_time, amr, acr) describe the ID token's session, not the user.
    /// </summary>
    public async Task<Dictionary<string, object?>> UserinfoAsync(ApplicationUser user, ImmutableArray<string> scopes,
        CancellationToken cancellationToken)
    {
        var identity = await UserIdentityAsync(user, scopes, cancellationToken);
        var profile = identity.HasScope(Scopes.Profile);
        var email = identity.HasScope(Scopes.Email);
        var response = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var claim in identity.Claims)
        {
            if (claim.Type == Claims.Subject
                || DestinationsOf(claim.Type, profile, email)?.Destinations.Contains(OpenIddictConstants.Destinations.IdentityToken) == true)
            {
                response[claim.Type] = claim.ValueType switch
                {
                    ClaimValueTypes.Boolean => bool.Parse(claim.Value),
                    JsonClaimValueTypes.Json or JsonClaimValueTypes.JsonArray => JsonSerializer.Deserialize<JsonElement>(claim.Value),
                    _ => claim.Value,
                };
            }
        }

        return response;
    }

    /// <summary>The claims about the user (not the sign-in), with the scopes they are destined by.</summary>
    private async Task<ClaimsIdentity> UserIdentityAsync(ApplicationUser user, ImmutableArray<string> scopes, CancellationToken cancellationToken)
    {
        var identity = NewIdentity();
        identity.SetScopes(scopes);

        // The subject is the stable user id, never the email (which can change).
        // Added, not set: the identity is new, so there is nothing for SetClaim's search to remove.
        AddIfPresent(identity, Claims.Subject, user.Id);
        AddIfPresent(identity, Claims.Name, user.DisplayName ?? user.Email);
        AddIfPresent(identity, Claims.PreferredUsername, user.UserName);
        if (user.AccountId is { } accountId && identity.HasScope(Scopes.Profile))
        {
            // Only with the profile scope; the name as this replica last read it, with the account's status (DirectoryCache).
            var name = (await directory.AccountAsync(db, accountId, cancellationToken))?.Name;
            identity.AddClaim(new Claim(AccountClaim, JsonSerializer.Serialize(new { id = accountId, name, role = user.Role }),
                JsonClaimValueTypes.Json));
        }

        AddIfPresent(identity, Claims.Email, user.Email);
        identity.AddClaim(Claims.EmailVerified, user.EmailConfirmed);
        return identity;
    }

    private static void AddIfPresent(ClaimsIdentity identity, string type, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            identity.AddClaim(type, value);
        }
    }

    /// <summary>
    /// OpenID Connect Core §5.4: profile and email claims only with their scope; session claims in the ID token. Null:
    /// in no token.
    /// </summary>
    private static DestinationSet? DestinationsOf(string claimType, bool profileScope, bool emailScope) => claimType switch
    {
        Claims.Name or Claims.PreferredUsername => profileScope ? BothTokens : null,
        // Only ever added with the profile scope; for the relying party, not the APIs (decision 0057, userinfo).
        AccountClaim => IdentityTokenOnly,
        Claims.Email or Claims.EmailVerified => emailScope ? IdentityTokenOnly : null,
        SessionClaims.SessionId or SessionClaims.AuthTime or SessionClaims.Methods or SessionClaims.ContextClass => IdentityTokenOnly,
        _ => AccessTokenOnly,
    };

    /// <summary>
    /// A set of destinations, with the claim properties OpenIddict's <c>SetDestinations</c> stores for it (a JSON array),
    /// written by OpenIddict once per set and copied onto each claim: serialising the same array again for every claim
    /// of every token was ~5 % of the bytes allocated per SSO round trip (decision 0098).
    /// </summary>
    private sealed class DestinationSet
    {
        private readonly KeyValuePair<string, string>[] _properties;

        public DestinationSet(params string[] destinations)
        {
            Destinations = [.. destinations];
            _properties = [.. new Claim("template", "template").SetDestinations(Destinations).Properties];
        }

        public ImmutableArray<string> Destinations { get; }

        public void ApplyTo(Claim claim)
        {
            foreach (var (key, value) in _properties)
            {
                claim.Properties[key] = value;
            }
        }
    }
}
