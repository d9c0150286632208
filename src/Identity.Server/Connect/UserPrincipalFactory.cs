using System.Collections.Immutable;
using System.Globalization;
using System.Security.Claims;
using System.Text.Json;
using Identity.Core.Data;
using Microsoft.AspNetCore.Identity;
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

    public static Claim[] ForNewSession(DateTimeOffset now, params string[] methods) =>
    [
        new(SessionId, Guid.NewGuid().ToString("n")),
        new(AuthTime, now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture), ClaimValueTypes.Integer64),
        new(Methods, JsonSerializer.Serialize(methods), JsonClaimValueTypes.JsonArray),
    ];

    public static DateTimeOffset? GetAuthTime(this ClaimsPrincipal principal) =>
        long.TryParse(principal.FindFirst(AuthTime)?.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds)
            ? DateTimeOffset.FromUnixTimeSeconds(seconds)
            : null;
}

/// <summary>
/// The one place that turns a user into the principal OpenIddict issues tokens from, and decides each claim's
/// destinations (STYLE §6). Used by the authorization endpoint and by code and refresh-token redemption.
/// </summary>
public sealed class UserPrincipalFactory(UserManager<ApplicationUser> users)
{
    public async Task<ClaimsPrincipal> CreateAsync(ApplicationUser user, ClaimsPrincipal session,
        ImmutableArray<string> scopes, ImmutableArray<string> resources, string? authorizationId)
    {
        var identity = new ClaimsIdentity(
            authenticationType: Microsoft.IdentityModel.Tokens.TokenValidationParameters.DefaultAuthenticationType,
            nameType: Claims.Name, roleType: Claims.Role);

        // The subject is the stable user id, never the email (which can change).
        identity.SetClaim(Claims.Subject, await users.GetUserIdAsync(user));
        identity.SetClaim(Claims.Name, user.DisplayName ?? user.Email);
        identity.SetClaim(Claims.PreferredUsername, await users.GetUserNameAsync(user));
        identity.SetClaim(Claims.Email, await users.GetEmailAsync(user));
        identity.SetClaim(Claims.EmailVerified, await users.IsEmailConfirmedAsync(user));

        foreach (var type in new[] { SessionClaims.SessionId, SessionClaims.AuthTime, SessionClaims.Methods })
        {
            if (session.FindFirst(type) is { } claim)
            {
                identity.AddClaim(new Claim(claim.Type, claim.Value, claim.ValueType));
            }
        }

        identity.SetScopes(scopes);
        identity.SetResources(resources);
        if (authorizationId is not null)
        {
            identity.SetAuthorizationId(authorizationId);
        }

        identity.SetDestinations(claim => Destinations(claim, identity));
        return new ClaimsPrincipal(identity);
    }

    /// <summary>OpenID Connect Core §5.4: profile and email claims only with their scope; session claims in the ID token.</summary>
    private static IEnumerable<string> Destinations(Claim claim, ClaimsIdentity identity)
    {
        switch (claim.Type)
        {
            case Claims.Name or Claims.PreferredUsername:
                if (identity.HasScope(Scopes.Profile))
                {
                    yield return OpenIddictConstants.Destinations.AccessToken;
                    yield return OpenIddictConstants.Destinations.IdentityToken;
                }

                yield break;

            case Claims.Email or Claims.EmailVerified:
                if (identity.HasScope(Scopes.Email))
                {
                    yield return OpenIddictConstants.Destinations.IdentityToken;
                }

                yield break;

            case SessionClaims.SessionId or SessionClaims.AuthTime or SessionClaims.Methods:
                yield return OpenIddictConstants.Destinations.IdentityToken;
                yield break;

            default:
                yield return OpenIddictConstants.Destinations.AccessToken;
                yield break;
        }
    }
}
