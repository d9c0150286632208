using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Core;
using OpenIddict.EntityFrameworkCore.Models;

namespace Identity.Server.Connect.Replacements;

/// <summary>
/// OpenIddict's token manager, except that revoking the tokens of an authorization revokes the authorization too.
/// OpenIddict calls <see cref="RevokeByAuthorizationIdAsync"/> when a redeemed authorization code is presented again
/// (RFC 6749 §4.1.2: the tokens issued from it should be revoked) or a refresh token is reused after the leeway
/// (RFC 9700 §4.14.2). Access and ID tokens of the code and refresh flows have no token entry of their own
/// (<see cref="TokenSigningPolicy"/>): their validity at Identity (introspection, userinfo, <c>id_token_hint</c>) is
/// that of the ad-hoc authorization each code gets, so the authorization is what must be revoked.
/// </summary>
public sealed class TokenChainManager(
    IOpenIddictTokenCache<OpenIddictEntityFrameworkCoreToken> cache,
    ILogger<OpenIddictTokenManager<OpenIddictEntityFrameworkCoreToken>> logger,
    IOptionsMonitor<OpenIddictCoreOptions> options,
    IOpenIddictTokenStore<OpenIddictEntityFrameworkCoreToken> store,
    IOpenIddictAuthorizationManager authorizations)
    : OpenIddictTokenManager<OpenIddictEntityFrameworkCoreToken>(cache, logger, options, store)
{
    public override async ValueTask<long> RevokeByAuthorizationIdAsync(string identifier, CancellationToken cancellationToken = default)
    {
        var revoked = await base.RevokeByAuthorizationIdAsync(identifier, cancellationToken);
        if (await authorizations.FindByIdAsync(identifier, cancellationToken) is { } authorization
            && !await authorizations.TryRevokeAsync(authorization, cancellationToken))
        {
            // OpenIddict's caller logs this as a warning and still refuses the replayed token.
            throw new InvalidOperationException($"The authorization {identifier} could not be revoked.");
        }

        return revoked;
    }
}
