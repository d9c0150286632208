using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Refuses a token whose client no longer exists, when the token has neither a token entry nor an authorization that
/// the client's deletion would have revoked: the client-credentials access tokens, which are not stored
/// (<see cref="TokenSigningPolicy"/>). Without this, a deleted client's token would stay active at introspection until
/// it expired (RFC 7662 §2.2: a token of a client that was removed is not active). The lookup goes through the caching
/// application manager: the replica that deleted the client knows at once, the others within
/// <c>Oidc:ApplicationCacheDuration</c>. Resource servers that validate the JWT from the JWKS alone still accept it until
/// it expires; they introspect when that matters.
/// </summary>
public sealed class DeletedClientTokens(IOpenIddictApplicationManager applications) : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
            .UseScopedHandler<DeletedClientTokens>()
            // After UnstoredTokenAuthorization has named the authorization of a token without an entry.
            .SetOrder(OpenIddictServerHandlers.Protection.ValidateTokenEntry.Descriptor.Order + 600)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ValidateTokenContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!string.IsNullOrEmpty(context.TokenId) || !string.IsNullOrEmpty(context.AuthorizationId) || context.Principal is null)
        {
            return; // an entry or an authorization: deleting the client revoked it, and OpenIddict checks that
        }

        var client = context.Principal.GetPresenters().FirstOrDefault() ?? context.Principal.GetClaim(Claims.ClientId);
        if (client is not null && await applications.FindByClientIdAsync(client, context.CancellationToken) is null)
        {
            context.Reject(Errors.InvalidToken, "The client the token was issued to no longer exists.");
        }
    }
}
