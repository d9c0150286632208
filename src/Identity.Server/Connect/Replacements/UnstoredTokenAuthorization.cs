using System.Security.Claims;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Validation;

namespace Identity.Server.Connect.Replacements;

/// <summary>
/// Makes OpenIddict check the authorization entry of tokens that have no token entry of their own (access and ID
/// tokens of the code and refresh flows, see <see cref="TokenSigningPolicy"/>), wherever Identity validates them:
/// on the server side (introspection, revocation, userinfo, <c>id_token_hint</c>) and in the APIs' token validation
/// (admin API, sync API, with <c>EnableAuthorizationEntryValidation</c>). OpenIddict takes the authorization of a
/// token from its token entry only; without this, such a token would stay accepted after its authorization was revoked
/// (a replayed code, a reused refresh token, revoked sessions, a disabled or deleted user, a deleted client). The id
/// comes from the token's own claims, whose signature has already been checked; the check itself is OpenIddict's
/// <c>ValidateAuthorizationEntry</c>, which refuses the token with <c>invalid_token</c> (RFC 6750 §3.1).
/// </summary>
public static class UnstoredTokenAuthorization
{
    public static OpenIddictServerHandlerDescriptor ServerDescriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<OpenIddictServerEvents.ValidateTokenContext>()
            .UseSingletonHandler<ServerHandler>()
            // After ValidateTokenEntry (which resolves nothing for these tokens), before ValidateAuthorizationEntry.
            .SetOrder(OpenIddictServerHandlers.Protection.ValidateTokenEntry.Descriptor.Order + 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public static OpenIddictValidationHandlerDescriptor ValidationDescriptor { get; } =
        OpenIddictValidationHandlerDescriptor.CreateBuilder<OpenIddictValidationEvents.ValidateTokenContext>()
            .UseSingletonHandler<ValidationHandler>()
            // The same place in the validation stack.
            .SetOrder(OpenIddictValidationHandlers.Protection.ValidateTokenEntry.Descriptor.Order + 500)
            .SetType(OpenIddictValidationHandlerType.Custom)
            .Build();

    /// <summary>The authorization id to check, when OpenIddict found none (no token entry) and the token names one.</summary>
    private static string? MissingAuthorizationId(string? tokenId, string? authorizationId, ClaimsPrincipal? principal) =>
        string.IsNullOrEmpty(tokenId) && string.IsNullOrEmpty(authorizationId)
        && principal?.GetAuthorizationId() is { Length: > 0 } id ? id : null;

    public sealed class ServerHandler : IOpenIddictServerHandler<OpenIddictServerEvents.ValidateTokenContext>
    {
        public ValueTask HandleAsync(OpenIddictServerEvents.ValidateTokenContext context)
        {
            context.AuthorizationId = MissingAuthorizationId(context.TokenId, context.AuthorizationId, context.Principal) ?? context.AuthorizationId;
            return ValueTask.CompletedTask;
        }
    }

    public sealed class ValidationHandler : IOpenIddictValidationHandler<OpenIddictValidationEvents.ValidateTokenContext>
    {
        public ValueTask HandleAsync(OpenIddictValidationEvents.ValidateTokenContext context)
        {
            context.AuthorizationId = MissingAuthorizationId(context.TokenId, context.AuthorizationId, context.Principal) ?? context.AuthorizationId;
            return ValueTask.CompletedTask;
        }
    }
}
