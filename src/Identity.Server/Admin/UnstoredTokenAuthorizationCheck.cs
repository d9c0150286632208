using OpenIddict.Abstractions;
using OpenIddict.Validation;
using static OpenIddict.Validation.OpenIddictValidationEvents;

namespace Identity.Server.Admin;

/// <summary>
/// The APIs' token validation (admin API, sync API) checks a person's access token against its authorization entry,
/// as introspection and userinfo do (<see cref="Connect.UnstoredTokenAuthorization"/> on the server side). Those tokens
/// have no token entry of their own (<see cref="Connect.TokenSigningPolicy"/>), and OpenIddict's validation takes the
/// authorization id only from a token entry: without this, a token stays accepted after its authorization was revoked
/// (revoked sessions, a disabled or deleted user, a deleted client). The id comes from the token's own claims, whose
/// signature was checked before; the check itself is OpenIddict's <c>ValidateAuthorizationEntry</c>, enabled with
/// <c>EnableAuthorizationEntryValidation</c>, which refuses the token with <c>invalid_token</c> (401, RFC 6750 §3.1).
/// </summary>
public sealed class UnstoredTokenAuthorizationCheck : IOpenIddictValidationHandler<ValidateTokenContext>
{
    public static OpenIddictValidationHandlerDescriptor Descriptor { get; } =
        OpenIddictValidationHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
            .UseSingletonHandler<UnstoredTokenAuthorizationCheck>()
            // After ValidateTokenEntry (which resolves nothing for these tokens), before ValidateAuthorizationEntry.
            .SetOrder(OpenIddictValidationHandlers.Protection.ValidateTokenEntry.Descriptor.Order + 500)
            .SetType(OpenIddictValidationHandlerType.Custom)
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
