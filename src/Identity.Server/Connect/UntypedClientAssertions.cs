using Microsoft.IdentityModel.JsonWebTokens;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Accepts <c>private_key_jwt</c> client assertions that carry no <c>typ</c> header, or <c>typ: JWT</c>, when their
/// only audience is exactly the issuer.
/// <para>
/// RFC 7523 §3 requires no <c>typ</c>, and openid-client and most libraries send none. OpenIddict 7 follows
/// draft-ietf-oauth-rfc7523bis: it accepts only the issuer as audience (with or without the trailing slash of a
/// host-only issuer) and only the explicit type <c>client-authentication+jwt</c> (the media type that draft registers),
/// refusing an untyped assertion as "not of the expected type". The audience rule is what closes the vulnerability
/// the draft addresses (an assertion made for one server's endpoint replayed at another); the explicit type guards
/// against another JWT the client signed being presented as an assertion. An untyped assertion whose sole audience
/// is this issuer, string for string, was made for client authentication here: it is accepted as if typed. Any other
/// audience (the token endpoint URL included) or another explicit type (<c>dpop+jwt</c>, <c>at+jwt</c>, ...) is still
/// refused with <c>invalid_client</c>.
/// </para>
/// </summary>
public sealed class UntypedClientAssertions : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
            .UseSingletonHandler<UntypedClientAssertions>()
            // After OpenIddict resolves the assertion's validation parameters (its type validator), before they are used.
            .SetOrder(OpenIddictServerHandlers.Protection.ResolveTokenValidationParameters.Descriptor.Order + 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.ValidTokenTypes.Count != 1 || !context.ValidTokenTypes.Contains(TokenTypeIdentifiers.Private.ClientAssertion)
            || context.TokenValidationParameters is not { TypeValidator: { } typed } parameters
            || (context.Options.Issuer ?? context.BaseUri)?.AbsoluteUri is not { } issuer)
        {
            return ValueTask.CompletedTask;
        }

        parameters.TypeValidator = (type, token, validation) =>
            (string.IsNullOrEmpty(type) || string.Equals(type, "JWT", StringComparison.OrdinalIgnoreCase))
            && token is JsonWebToken jwt && jwt.Audiences.ToList() is [var audience]
            && string.Equals(audience, issuer, StringComparison.Ordinal)
                ? JsonWebTokenTypes.ClientAuthentication // validated, and mapped to a client assertion, as the typed one
                : typed(type, token, validation);
        return ValueTask.CompletedTask;
    }
}
