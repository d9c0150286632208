using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Makes OpenIddict check the authorization entry of tokens that have no token entry of their own (access and ID
/// tokens of the code and refresh flows, see <see cref="TokenSigningPolicy"/>) when Identity validates them
/// (introspection, revocation, userinfo, <c>id_token_hint</c>). OpenIddict takes the authorization of a token from
/// its token entry only; without this, such a token would stay accepted after its authorization was revoked (a
/// replayed code, a reused refresh token, revoked sessions, a deleted client). The id comes from the token's own
/// claims, which its signature has already been checked for.
/// </summary>
public sealed class UnstoredTokenAuthorization : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
            .UseSingletonHandler<UnstoredTokenAuthorization>()
            // After ValidateTokenEntry (which resolves nothing for these tokens), before ValidateAuthorizationEntry.
            .SetOrder(OpenIddictServerHandlers.Protection.ValidateTokenEntry.Descriptor.Order + 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (string.IsNullOrEmpty(context.TokenId) && string.IsNullOrEmpty(context.AuthorizationId)
            && context.Principal?.GetAuthorizationId() is { Length: > 0 } authorizationId)
        {
            context.AuthorizationId = authorizationId;
        }

        return ValueTask.CompletedTask;
    }
}
