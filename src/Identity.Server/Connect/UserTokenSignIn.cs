using Identity.Core.Data;
using Microsoft.AspNetCore.Identity;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Redeems an authorization code or a refresh token (OpenIddict has already checked PKCE, the redirect URI, the
/// client, and replay — a replayed code or refresh token revokes its chain): the user must still exist and be
/// allowed to sign in, and the new tokens carry the user's current claims.
/// </summary>
public sealed class UserTokenSignIn(
    UserManager<ApplicationUser> users,
    SignInManager<ApplicationUser> signIn,
    UserPrincipalFactory principals,
    Account.DirectoryCache directory,
    AuthorityDbContext db) : IOpenIddictServerHandler<HandleTokenRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<HandleTokenRequestContext>()
            .UseScopedHandler<UserTokenSignIn>()
            // Filtered before resolution: resolving this scoped handler builds a UserManager and a SignInManager
            // (with their metrics) and rents a DbContext, ~4 % of the server's CPU per client-credentials token (perf).
            .AddFilter<RequireUserGrant>()
            // After OpenIddict has attached the redeemed code's or refresh token's principal, which this handler reads.
            .SetOrder(OpenIddictServerHandlers.Exchange.AttachPrincipal.Descriptor.Order + 2_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(HandleTokenRequestContext context)
    {
        if (!context.Request.IsAuthorizationCodeGrantType() && !context.Request.IsRefreshTokenGrantType())
        {
            return;
        }

        var principal = context.Principal ?? throw new InvalidOperationException("The redeemed token has no principal.");
        // The user and their account as this replica last read them (DirectoryCache, at most Oidc:UserCacheDuration old).
        var user = await directory.UserAsync(db, principal.GetClaim(Claims.Subject), context.CancellationToken);
        if (user is null || !await signIn.CanSignInAsync(user) || await users.IsLockedOutAsync(user))
        {
            context.Reject(error: Errors.InvalidGrant, description: "The user is no longer allowed to sign in.");
            return;
        }

        context.SignIn(await principals.CreateAsync(user, principal, principal.GetScopes(), principal.GetResources(),
            principal.GetAuthorizationId()));
    }
}

/// <summary>Only the grants that redeem a user's code or refresh token reach <see cref="UserTokenSignIn"/>.</summary>
public sealed class RequireUserGrant : IOpenIddictServerHandlerFilter<HandleTokenRequestContext>
{
    public ValueTask<bool> IsActiveAsync(HandleTokenRequestContext context) =>
        ValueTask.FromResult(context.Request.IsAuthorizationCodeGrantType() || context.Request.IsRefreshTokenGrantType());
}
